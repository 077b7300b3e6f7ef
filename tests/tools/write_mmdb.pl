#!/usr/bin/perl
# Writes a small MaxMind DB country database from a prefix list, for tests.
# Usage: write_mmdb.pl LAYOUT PREFIXES.tsv OUT.mmdb
#   LAYOUT: geoip2       records {country => {iso_code => CC}} (GeoIP2/GeoLite2 layout)
#           country_code records {country_code => CC}          (ip-location-db layout)
#   PREFIXES.tsv: "prefix<TAB>CC" lines; CC "--" lines are skipped (unknown sources).
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($layout, $in, $out) = @ARGV;
die "usage: $0 geoip2|country_code PREFIXES.tsv OUT.mmdb\n" unless $out;
die "unknown layout '$layout'\n" unless $layout eq 'geoip2' || $layout eq 'country_code';

my %types = (country => 'map', iso_code => 'utf8_string', country_code => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version              => 6,
    record_size             => 28,
    database_type           => $layout eq 'geoip2' ? 'Teiten-Test-GeoIP2-Country' : 'Teiten-Test-country_code',
    languages               => ['en'],
    description             => { en => 'Teiten test country database' },
    remove_reserved_networks => 0,
    map_key_type_callback   => sub { $types{ $_[0] } },
);
open my $fh, '<', $in or die "cannot read $in: $!\n";
while (my $line = <$fh>) {
    chomp $line;
    next if $line eq '' || $line =~ /^#/;
    my ($prefix, $cc) = split /\t/, $line;
    next if $cc eq '--';
    my $record = $layout eq 'geoip2' ? { country => { iso_code => $cc } } : { country_code => $cc };
    $tree->insert_network($prefix, $record);
}
open my $o, '>:raw', $out or die "cannot write $out: $!\n";
$tree->write_tree($o);
close $o or die "cannot write $out: $!\n";

#!/usr/bin/env python3
"""Builds the seed corpora under tests/fuzz/corpus/ (committed; rerun to refresh).

decode_classify/: frames from a generated capture (teitenctl generate), prefixed with the
link-type byte the fuzz target reads (0: Ethernet), plus the same IP packets under every
other link type. bucket_json/: sealed-bucket lines from replaying that capture;
batch_json/: batches of those lines, as the collector receives them.
Usage: make_corpus.py TEITENCTL TEITEN_SENSORD
"""
import hashlib, os, struct, subprocess, sys, tempfile

ctl, sensord = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
out_dc = os.path.join(here, "corpus", "decode_classify")
out_bj = os.path.join(here, "corpus", "bucket_json")
out_batch = os.path.join(here, "corpus", "batch_json")
os.makedirs(out_batch, exist_ok=True)
os.makedirs(out_dc, exist_ok=True)
os.makedirs(out_bj, exist_ok=True)

def save(folder, data):
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

with tempfile.TemporaryDirectory() as tmp:
    pcap = os.path.join(tmp, "g.pcap")
    subprocess.run([ctl, "generate", "--out", pcap, "--packets", "400", "--seed", "11",
                    "--duration", "300"], check=True, stderr=subprocess.DEVNULL)
    data = open(pcap, "rb").read()
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frames.append(data[off + 16: off + 16 + caplen])
        off += 16 + caplen
    for i, fr in enumerate(frames[:160]):
        save(out_dc, bytes([0]) + fr)
        et = fr[12:14]
        ip = fr[14:] if et in (b"\x08\x00", b"\x86\xdd") else None
        if ip is None or i % 4:
            continue
        v6 = (ip[0] >> 4) == 6
        proto = b"\x86\xdd" if v6 else b"\x08\x00"
        save(out_dc, bytes([1]) + bytes(14) + proto + ip)               # SLL
        save(out_dc, bytes([2]) + proto + bytes(18) + ip)               # SLL2
        save(out_dc, bytes([3]) + ip)                                   # RAW
        save(out_dc, bytes([5 if v6 else 4]) + ip)                      # IPV4 / IPV6
        save(out_dc, bytes([6]) + struct.pack("<I", 10 if v6 else 2) + ip)  # NULL
        save(out_dc, bytes([7]) + struct.pack(">I", 24 if v6 else 2) + ip)  # LOOP
    cfg = os.path.join(tmp, "s.yaml")
    open(cfg, "w").write('sensor:\n  id: fuzz\n  addresses: [203.0.113.7, "2001:db8:7::7"]\n'
                         'geoip:\n  database: ""\nbuckets:\n  width: 10\n')
    out = subprocess.run([sensord, "-c", cfg, "-r", pcap], check=True, capture_output=True).stdout
    lines = out.splitlines()[:20]
    for line in lines:
        save(out_bj, line)
    for i in range(0, len(lines), 3):
        save(out_batch, b'{"buckets":[' + b",".join(lines[i:i + 3]) + b"]}")
    for extra in (b'{"buckets":[]}', b'{"buckets":{}}', b"[]"):
        save(out_batch, extra)

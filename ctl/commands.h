// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "common/http/client.h"

namespace teiten::ctl {

/// `teitenctl pki ...`: CA, collector, sensor and operator certificates. Returns the exit code.
int cmd_pki(const std::vector<std::string>& args);

/// `teitenctl query ...`: totals from a collector over mutual TLS. Returns the exit code.
int cmd_query(const std::vector<std::string>& args);

/// `teitenctl status ...`: a sensor's state from its control server. Returns the exit code.
int cmd_status(const std::vector<std::string>& args);

/// `teitenctl pull ...`: a sensor's recent buckets (and the open one). Returns the exit code.
int cmd_pull(const std::vector<std::string>& args);

/// `teitenctl dead-letter list|resend ...`: buckets a collector refused, kept by a sensor
/// (through its control server, or a stopped sensor's state folder). Returns the exit code.
int cmd_dead_letter(const std::vector<std::string>& args);

/// `teitenctl report ...`: the quarterly analyses from a collector. Returns the exit code.
int cmd_report(const std::vector<std::string>& args);
/// `teitenctl events ...`: the notable changes from a collector. Returns the exit code.
int cmd_events(const std::vector<std::string>& args);

/// `teitenctl db copy --sqlite FILE --postgresql CONNINFO`: a collector's SQLite store
/// into an empty PostgreSQL database, as it is. Returns the exit code.
int cmd_db(const std::vector<std::string>& args);

/// `teitenctl simulate ...`: realistic buckets of many sensors through the ingest API.
int cmd_simulate(const std::vector<std::string>& args);

/// The options of commands that talk to a collector: --collector HOST:PORT (into
/// `endpoint`), --ca, --cert, --key. Returns whether `option` was one of them.
bool collector_option(const std::string& option, const std::string& value, std::string& endpoint,
                      tls::ClientTlsFiles& files);

/// Prints "teitenctl: <msg> (see teitenctl help)" and returns 2.
int fail_usage(const std::string& msg);

}  // namespace teiten::ctl

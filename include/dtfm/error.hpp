// The error hierarchy: every failure dtfm reports is a dtfm::error, typed by what went wrong, so
// callers can retry a timeout, drop a malformed message or fix a config file.
#pragma once

#include <stdexcept>
#include <string>

namespace dtfm {

// Base of every exception dtfm throws on purpose.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Bytes that do not decode: bad magic, unknown version or kind, a length that does not fit the
// buffer, a checksum mismatch. Raised by every decoder of untrusted input, never UB.
class wire_error : public error {
public:
    enum class reason {
        truncated,          // fewer bytes than the header or its lengths promise
        bad_magic,          // not a dtfm payload
        bad_version,        // a version this build cannot read
        bad_kind,           // a payload of another compressor or message kind
        bad_length,         // a length or count inconsistent with the rest
        checksum_mismatch,  // the bytes changed on the way
        bad_value           // a field out of its valid range
    };

    wire_error(reason why, const std::string& what) : error(what), why_(why) {}
    reason why() const noexcept { return why_; }

private:
    reason why_;
};

// A transport could not move bytes: an MPI call failed, a peer is gone, a message is too large.
class transport_error : public error {
public:
    using error::error;
};

// A wait ran past its deadline. A transport_error, so code that treats every link failure alike
// can catch the base.
class timeout_error : public transport_error {
public:
    using transport_error::transport_error;
};

// A malformed or inconsistent configuration: a topology file, a plan, a flag.
class config_error : public error {
public:
    using error::error;
};

inline const char* to_string(wire_error::reason r) noexcept {
    switch (r) {
    case wire_error::reason::truncated: return "truncated";
    case wire_error::reason::bad_magic: return "bad magic";
    case wire_error::reason::bad_version: return "bad version";
    case wire_error::reason::bad_kind: return "bad kind";
    case wire_error::reason::bad_length: return "bad length";
    case wire_error::reason::checksum_mismatch: return "checksum mismatch";
    case wire_error::reason::bad_value: return "bad value";
    }
    return "unknown";
}

}  // namespace dtfm

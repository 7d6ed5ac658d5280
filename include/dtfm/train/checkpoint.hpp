// train::checkpoint: named arrays of one rank's training state (parameters, optimizer moments,
// error-feedback residuals, counters) in one file, written atomically and checked on load.
//
// File: "DTFMCKPT", u32 version, u32 entry count; per entry u32 name length, name, u32 element
// size, u64 byte length, bytes, u32 CRC32C of the bytes; then a u32 CRC32C of everything before.
// All little-endian. A truncated file, a bad checksum or a missing entry is refused with a
// dtfm::wire_error naming the file; nothing is applied from a file that fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "dtfm/error.hpp"
#include "dtfm/wire/crc32c.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::train {

class checkpoint {
public:
    static constexpr char magic[8] = {'D', 'T', 'F', 'M', 'C', 'K', 'P', 'T'};
    static constexpr std::uint32_t version = 1;

    template <class T>
        requires std::is_trivially_copyable_v<T>
    void put(const std::string& name, std::span<const T> values) {
        entry e{sizeof(T), std::vector<std::byte>(values.size_bytes())};
        if (!values.empty()) std::memcpy(e.bytes.data(), values.data(), values.size_bytes());
        entries_[name] = std::move(e);
    }

    // Reads entry `name` into out (resized to fit); the element size must match.
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void get(const std::string& name, std::vector<T>& out) const {
        const auto it = entries_.find(name);
        if (it == entries_.end()) throw wire_error(wire_error::reason::bad_value, "checkpoint: no entry " + name);
        if (it->second.element_size != sizeof(T) || it->second.bytes.size() % sizeof(T) != 0)
            throw wire_error(wire_error::reason::bad_length, "checkpoint: entry " + name + " holds elements of another size");
        out.resize(it->second.bytes.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), it->second.bytes.data(), it->second.bytes.size());
    }

    bool contains(const std::string& name) const { return entries_.count(name) != 0; }
    std::size_t size() const noexcept { return entries_.size(); }

    // Writes to a temporary file beside `file`, flushes it to disk, then renames it over `file`:
    // a crash at any moment leaves either the old file or the new one, never a torn one.
    void write_atomic(const std::filesystem::path& file) const {
        const std::vector<std::byte> bytes = encode();
        const std::filesystem::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw error("checkpoint: cannot create " + tmp.string());
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ::ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n <= 0) {
                ::close(fd);
                std::filesystem::remove(tmp);
                throw error("checkpoint: writing " + tmp.string() + " failed");
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(fd) != 0 || ::close(fd) != 0) {
            std::filesystem::remove(tmp);
            throw error("checkpoint: flushing " + tmp.string() + " failed");
        }
        std::filesystem::rename(tmp, file);
        sync_directory(file.parent_path());
    }

    static checkpoint read(const std::filesystem::path& file) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw config_error("checkpoint: cannot open " + file.string());
        std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::vector<std::byte> bytes(raw.size());
        if (!raw.empty()) std::memcpy(bytes.data(), raw.data(), raw.size());
        try {
            return decode(bytes);
        } catch (const wire_error& e) {
            throw wire_error(e.why(), file.string() + ": " + e.what());
        }
    }

    std::vector<std::byte> encode() const {
        std::vector<std::byte> out;
        auto put_raw = [&](const void* p, std::size_t n) {
            const auto* b = static_cast<const std::byte*>(p);
            out.insert(out.end(), b, b + n);
        };
        auto put_u32 = [&](std::uint32_t v) {
            std::byte b[4];
            wire::store_le(b, v);
            put_raw(b, 4);
        };
        auto put_u64 = [&](std::uint64_t v) {
            std::byte b[8];
            wire::store_le(b, v);
            put_raw(b, 8);
        };
        put_raw(magic, 8);
        put_u32(version);
        put_u32(static_cast<std::uint32_t>(entries_.size()));
        for (const auto& [name, e] : entries_) {
            put_u32(static_cast<std::uint32_t>(name.size()));
            put_raw(name.data(), name.size());
            put_u32(e.element_size);
            put_u64(e.bytes.size());
            put_raw(e.bytes.data(), e.bytes.size());
            put_u32(wire::crc32c(e.bytes));
        }
        put_u32(wire::crc32c(out));
        return out;
    }

    static checkpoint decode(std::span<const std::byte> bytes) {
        using reason = wire_error::reason;
        if (bytes.size() < 20) throw wire_error(reason::truncated, "checkpoint is " + std::to_string(bytes.size()) + " bytes, too short");
        if (std::memcmp(bytes.data(), magic, 8) != 0) throw wire_error(reason::bad_magic, "not a dtfm checkpoint");
        const std::size_t body = bytes.size() - 4;
        if (wire::crc32c(bytes.first(body)) != wire::load_le<std::uint32_t>(bytes.data() + body))
            throw wire_error(reason::checksum_mismatch, "checkpoint checksum mismatch (the file is damaged or truncated)");
        std::size_t at = 8;
        auto need = [&](std::size_t n) {
            if (n > body - at) throw wire_error(reason::truncated, "checkpoint ends inside an entry");
        };
        auto u32 = [&] {
            need(4);
            const auto v = wire::load_le<std::uint32_t>(bytes.data() + at);
            at += 4;
            return v;
        };
        auto u64 = [&] {
            need(8);
            const auto v = wire::load_le<std::uint64_t>(bytes.data() + at);
            at += 8;
            return v;
        };
        if (u32() != version) throw wire_error(reason::bad_version, "checkpoint version is not 1");
        const std::uint32_t count = u32();
        checkpoint c;
        for (std::uint32_t i = 0; i < count; ++i) {
            const std::uint32_t name_len = u32();
            need(name_len);
            std::string name(reinterpret_cast<const char*>(bytes.data() + at), name_len);
            at += name_len;
            const std::uint32_t element_size = u32();
            const std::uint64_t len = u64();
            if (len > body - at) throw wire_error(reason::truncated, "checkpoint entry " + name + " runs past the end");
            entry e{element_size, std::vector<std::byte>(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                                         bytes.begin() + static_cast<std::ptrdiff_t>(at + len))};
            at += static_cast<std::size_t>(len);
            if (u32() != wire::crc32c(e.bytes)) throw wire_error(reason::checksum_mismatch, "checkpoint entry " + name + " is damaged");
            c.entries_[std::move(name)] = std::move(e);
        }
        if (at != body) throw wire_error(reason::bad_length, "checkpoint has bytes after its last entry");
        return c;
    }

private:
    struct entry {
        std::uint32_t element_size = 1;
        std::vector<std::byte> bytes;
    };

    static void sync_directory(const std::filesystem::path& dir) {
        const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            (void)::fsync(fd);
            ::close(fd);
        }
    }

    std::map<std::string, entry> entries_;
};

// The two sides of serialize(Archive&) (Archive::loading tells them apart): a component writes
//   template <class A> void serialize(A& a) { a.values("velocity", velocity_); a.value("step", step_); }
// once, and it both saves into and restores from a checkpoint, under a prefix per component.
class checkpoint_saver {
public:
    static constexpr bool loading = false;
    checkpoint_saver(checkpoint& c, std::string prefix) : c_(c), prefix_(std::move(prefix)) {}
    template <class T>
    void values(std::string_view name, std::vector<T>& v) {
        c_.put<T>(prefix_ + std::string(name), std::span<const T>(v));
    }
    template <class T>
    void value(std::string_view name, T& v) {
        c_.put<T>(prefix_ + std::string(name), std::span<const T>(&v, 1));
    }
    template <class T>
    void span(std::string_view name, std::span<T> v) {
        c_.put<std::remove_const_t<T>>(prefix_ + std::string(name), std::span<const std::remove_const_t<T>>(v));
    }
    checkpoint_saver nested(std::string_view name) const { return {c_, prefix_ + std::string(name) + "/"}; }

private:
    checkpoint& c_;
    std::string prefix_;
};

class checkpoint_loader {
public:
    static constexpr bool loading = true;
    checkpoint_loader(const checkpoint& c, std::string prefix) : c_(c), prefix_(std::move(prefix)) {}
    template <class T>
    void values(std::string_view name, std::vector<T>& v) {
        c_.get<T>(prefix_ + std::string(name), v);
    }
    template <class T>
    void value(std::string_view name, T& v) {
        std::vector<T> one;
        c_.get<T>(prefix_ + std::string(name), one);
        if (one.size() != 1) throw wire_error(wire_error::reason::bad_length, "checkpoint: " + prefix_ + std::string(name) + " is not one value");
        v = one[0];
    }
    // A fixed-size array (parameters): the entry must hold exactly v.size() values.
    template <class T>
    void span(std::string_view name, std::span<T> v) {
        std::vector<T> got;
        c_.get<T>(prefix_ + std::string(name), got);
        if (got.size() != v.size())
            throw wire_error(wire_error::reason::bad_length, "checkpoint: " + prefix_ + std::string(name) + " holds " +
                                                                 std::to_string(got.size()) + " values, the model " + std::to_string(v.size()));
        std::copy(got.begin(), got.end(), v.begin());
    }
    checkpoint_loader nested(std::string_view name) const { return {c_, prefix_ + std::string(name) + "/"}; }

private:
    const checkpoint& c_;
    std::string prefix_;
};

// Saves or restores x if it has serialize(Archive&); does nothing for stateless parts.
template <class Archive, class X>
void serialize_if_stateful(Archive& a, std::string_view name, X& x) {
    if constexpr (requires(Archive& ar) { x.serialize(ar); }) {
        auto sub = a.nested(name);
        x.serialize(sub);
    }
}

}  // namespace dtfm::train

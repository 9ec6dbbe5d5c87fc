// The DRAM model's storage (rtl/verilog/dypipe_dram.v), DPI-C imports for Verilator.
//
// The memory lives here rather than in a Verilog array: Verilator would zero the whole array
// (256 MiB on paper) at start-up and read the image with $fread, a byte at a time through
// fgetc. Here it is one calloc, whose pages the kernel zeroes only where they are touched, and
// the image is read with one fread. A beat is beat_bytes bytes, least significant byte first:
// the image's order (dypipe/tb/dram_image.py) and that of svBitVecVal's 32-bit words on a
// little-endian host, so reads and writes are plain copies. One model per simulation.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "svdpi.h"

namespace {
unsigned char* memory = nullptr;
size_t beat_bytes = 0;
size_t depth = 0;

unsigned char* beat_at(int addr) {
    return memory + static_cast<size_t>(addr) * beat_bytes;
}
}  // namespace

// Makes a zeroed memory of depth_ beats of beat_bytes_ bytes, and reads the image at path into
// its first beats unless path is empty. Returns 0, or -1 if the host is not little-endian, the
// memory cannot be had, or the image cannot be read, is not whole beats, or is too long.
extern "C" int dypipe_dram_open(const char* path, int beat_bytes_, int depth_) {
    static_assert(sizeof(svBitVecVal) == 4, "svBitVecVal is a 32-bit word");
    const unsigned probe = 1;
    if (*reinterpret_cast<const unsigned char*>(&probe) != 1 || beat_bytes_ <= 0
        || beat_bytes_ % 4 || depth_ <= 0)
        return -1;
    std::free(memory);
    beat_bytes = static_cast<size_t>(beat_bytes_);
    depth = static_cast<size_t>(depth_);
    memory = static_cast<unsigned char*>(std::calloc(depth, beat_bytes));
    if (!memory) return -1;
    if (!path[0]) return 0;
    std::FILE* file = std::fopen(path, "rb");
    if (!file) return -1;
    std::fseek(file, 0, SEEK_END);
    long size = std::ftell(file);
    std::fseek(file, 0, SEEK_SET);
    bool ok = size >= 0 && static_cast<size_t>(size) % beat_bytes == 0
              && static_cast<size_t>(size) <= depth * beat_bytes
              && std::fread(memory, 1, static_cast<size_t>(size), file)
                     == static_cast<size_t>(size);
    std::fclose(file);
    return ok ? 0 : -1;
}

// Beat addr (below depth) into beat.
extern "C" void dypipe_dram_read(int addr, svBitVecVal* beat) {
    std::memcpy(beat, beat_at(addr), beat_bytes);
}

// The bytes of data that mask selects (bit i: byte i) into beat addr (below depth).
extern "C" void dypipe_dram_write(int addr, const svBitVecVal* data, const svBitVecVal* mask) {
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(data);
    unsigned char* to = beat_at(addr);
    for (size_t i = 0; i < beat_bytes; ++i)
        if (mask[i / 32] >> (i % 32) & 1) to[i] = bytes[i];
}

// Beats lo..hi to the file at path, one a line in hex, most significant digit first (the
// format of $writememh). Returns 0, or -1 if the file cannot be written.
extern "C" int dypipe_dram_dump(const char* path, int lo, int hi) {
    std::FILE* file = std::fopen(path, "w");
    if (!file) return -1;
    static const char digits[] = "0123456789abcdef";
    char* line = static_cast<char*>(std::malloc(2 * beat_bytes + 1));
    for (int addr = lo; line && addr <= hi; ++addr) {
        const unsigned char* beat = beat_at(addr);
        for (size_t i = 0; i < beat_bytes; ++i) {
            unsigned char byte = beat[beat_bytes - 1 - i];
            line[2 * i] = digits[byte >> 4];
            line[2 * i + 1] = digits[byte & 15];
        }
        line[2 * beat_bytes] = '\n';
        std::fwrite(line, 1, 2 * beat_bytes + 1, file);
    }
    bool ok = line != nullptr;
    std::free(line);
    return std::fclose(file) == 0 && ok ? 0 : -1;
}

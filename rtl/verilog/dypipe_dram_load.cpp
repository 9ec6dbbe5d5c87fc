// The DRAM model's image loader (rtl/verilog/dypipe_dram.v), a DPI-C import for Verilator.
//
// Verilator's $fread reads a file a byte at a time through fgetc; a 33 MB image took a tenth of
// a paper-size run. This loader reads the whole file with one fread and hands the model a beat
// per call. The image holds beats of beat_bytes bytes each, least significant byte first
// (dypipe/tb/dram_image.py writes it), which is also the order of svBitVecVal's 32-bit words
// on a little-endian host, so a beat is a plain copy.
#include <cstdio>
#include <cstring>
#include <vector>

#include "svdpi.h"

namespace {
std::vector<unsigned char> image;
int beat_bytes_of_image = 0;
}  // namespace

// Reads the file at path; returns its number of beats, or -1 if it cannot be read or its
// size is not a whole number of beats.
extern "C" int dypipe_dram_load(const char* path, int beat_bytes) {
    static_assert(sizeof(svBitVecVal) == 4, "svBitVecVal is a 32-bit word");
    const unsigned probe = 1;
    if (*reinterpret_cast<const unsigned char*>(&probe) != 1 || beat_bytes <= 0
        || beat_bytes % 4)
        return -1;
    std::FILE* file = std::fopen(path, "rb");
    if (!file) return -1;
    std::fseek(file, 0, SEEK_END);
    long size = std::ftell(file);
    std::fseek(file, 0, SEEK_SET);
    bool ok = size >= 0 && size % beat_bytes == 0;
    if (ok) {
        image.resize(static_cast<size_t>(size));
        ok = std::fread(image.data(), 1, image.size(), file) == image.size();
    }
    std::fclose(file);
    if (!ok) {
        image.clear();
        return -1;
    }
    beat_bytes_of_image = beat_bytes;
    return static_cast<int>(size / beat_bytes);
}

// Copies beat index of the image loaded last into beat.
extern "C" void dypipe_dram_beat(int index, svBitVecVal* beat) {
    std::memcpy(beat, image.data() + static_cast<size_t>(index) * beat_bytes_of_image,
                static_cast<size_t>(beat_bytes_of_image));
}

// Frees the image once the model holds it.
extern "C" void dypipe_dram_unload() {
    std::vector<unsigned char>().swap(image);
}

// Replays a launch plan on kernels built with a sanitizer (tests/cuda_sanitizers.py).
//
// One translation unit with the kernels: the generated harness force-includes
// the emulation header, includes the kernel source, defines one entry point
// per kernel instance, includes this file, then defines emulated_kernels.
//
//   driver PLAN BLOB [REPLAYS]
//
// PLAN is text, one record a line:
//   B id nbytes offset        a buffer: nbytes from BLOB at offset
//   L symbol blocks threads n a launch with n arguments, each b<id> (buffer) or s<value> (long long)
// Each buffer is a malloc of exactly nbytes, so that AddressSanitizer flags
// any access past its end; buffers persist across launches (one stream), so
// the results of one launch feed the next as on the GPU.  The whole plan is
// replayed REPLAYS times from fresh buffers; in the threaded build replay r
// sets adapool_emulation::os_thread_place to ADAPOOL_EMULATE_THREADS^r
// (emulation.h).  Exit status 0 unless the plan is malformed (2); sanitizer
// reports exit with their own status.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

struct EmulatedKernel {
    const char* symbol;
    void (*entry)(unsigned, unsigned, void**);
};
extern const EmulatedKernel emulated_kernels[];  // defined after this file, null-terminated

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "driver: %s\n", what.c_str());
    std::exit(2);
}

struct BufferRecord {
    size_t nbytes, offset;
};
struct Arg {
    bool buffer;
    long long value;  // buffer id or scalar
};
struct Launch {
    void (*entry)(unsigned, unsigned, void**);
    unsigned blocks, threads;
    std::vector<Arg> args;
};

void (*find_kernel(const std::string& symbol))(unsigned, unsigned, void**) {
    for (const EmulatedKernel* k = emulated_kernels; k->symbol; ++k)
        if (symbol == k->symbol) return k->entry;
    fail("no kernel " + symbol);
}

void replay(const std::vector<BufferRecord>& buffers, const std::vector<Launch>& launches, const std::string& blob) {
    std::vector<void*> memory(buffers.size());
    for (size_t i = 0; i < buffers.size(); ++i) {
        memory[i] = std::malloc(buffers[i].nbytes);  // exactly the array's bytes: no slack
        if (!memory[i] && buffers[i].nbytes) fail("out of memory");
        if (buffers[i].nbytes) std::memcpy(memory[i], blob.data() + buffers[i].offset, buffers[i].nbytes);
    }
    for (const Launch& launch : launches) {
        std::vector<void*> values(launch.args.size());
        std::vector<long long> scalars(launch.args.size());
        std::vector<void*> params(launch.args.size());
        for (size_t i = 0; i < launch.args.size(); ++i) {
            if (launch.args[i].buffer) {
                values[i] = memory[launch.args[i].value];
                params[i] = &values[i];
            } else {
                scalars[i] = launch.args[i].value;
                params[i] = &scalars[i];
            }
        }
        launch.entry(launch.blocks, launch.threads, params.data());
    }
    for (void* p : memory) std::free(p);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) fail("usage: driver PLAN BLOB [REPLAYS]");
    const int replays = argc > 3 ? std::atoi(argv[3]) : 1;
    std::ifstream blob_file(argv[2], std::ios::binary);
    if (!blob_file) fail(std::string("cannot read ") + argv[2]);
    std::ostringstream blob_stream;
    blob_stream << blob_file.rdbuf();
    const std::string blob = blob_stream.str();
    std::ifstream plan(argv[1]);
    if (!plan) fail(std::string("cannot read ") + argv[1]);
    std::vector<BufferRecord> buffers;
    std::vector<Launch> launches;
    std::string kind;
    while (plan >> kind) {
        if (kind == "B") {
            size_t id;
            BufferRecord b;
            if (!(plan >> id >> b.nbytes >> b.offset) || id != buffers.size() || b.offset + b.nbytes > blob.size())
                fail("bad buffer record");
            buffers.push_back(b);
        } else if (kind == "L") {
            std::string symbol, token;
            Launch launch;
            size_t n;
            if (!(plan >> symbol >> launch.blocks >> launch.threads >> n)) fail("bad launch record");
            launch.entry = find_kernel(symbol);
            for (size_t i = 0; i < n; ++i) {
                if (!(plan >> token) || token.size() < 2 || (token[0] != 'b' && token[0] != 's')) fail("bad argument");
                const Arg arg{token[0] == 'b', std::stoll(token.substr(1))};
                if (arg.buffer && (arg.value < 0 || (size_t)arg.value >= buffers.size())) fail("bad buffer id");
                launch.args.push_back(arg);
            }
            launches.push_back(launch);
        } else {
            fail("bad record " + kind);
        }
    }
    unsigned long long place = 1;
    for (int r = 0; r < replays; ++r) {
#ifdef ADAPOOL_EMULATE_THREADS
        adapool_emulation::os_thread_place = place;
        place *= ADAPOOL_EMULATE_THREADS;
#endif
        replay(buffers, launches, blob);
    }
    std::printf("driver: %zu launches x %d replays\n", launches.size(), replays);
    return 0;
}

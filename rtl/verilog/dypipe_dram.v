// DRAM model: the memory behind the accelerator's port, for simulation only (the harness
// instantiates it beside the top; see dypipe/rtl/mem_port.py for the port's rules).
//
// A request moves when req_valid and req_ready are high; reads and writes share the port. A
// write updates the bytes selected by req_wmask at the clock edge. A read returns mem[req_addr]
// as it was when accepted, with its tag echoed, LATENCY cycles after the request cycle (plus a
// random extra, below); reads come back in order, one resp_valid cycle each. Addresses are in
// WIDTH-bit beats; beats at or past DEPTH read as zero and ignore writes (the accelerator
// checks ranges itself).
//
// Random timing, off unless the plusarg +DRAM_SEED=<n> is given (n != 0; dypipe/tb/mem_timing.py
// picks it): a 32-bit xorshift generator, starting at n and stepped every cycle, refuses
// requests (req_ready low) in about +DRAM_STALL=<percent> of cycles (default 25, at most
// MAX_STALL) and adds 0..+DRAM_EXTRA=<cycles> (default 16, at most MAX_EXTRA) to each read's
// latency, keeping responses in order (a response is due at max(request + LATENCY + extra,
// previous response + 1)). The harness sets MAX_STALL and MAX_EXTRA from mem_timing.py.
// dypipe/tb/mem_timing.py has the same rule for the Python model: keep the two in step.
//
// The memory is held by dypipe_dram.cpp (DPI-C imports): zero but for the binary image named
// by plusarg +DRAM_INIT=<path>, loaded at time 0 (each beat WIDTH/8 bytes, least significant
// byte first). While dump_valid is high at a clock edge, beats dump_lo..dump_hi are written to
// +DRAM_DUMP=<path> as $writememh would (one beat a line, in hex).
module dypipe_dram #(
    parameter WIDTH = 64,
    parameter DEPTH = 1024,
    parameter ADDR_BITS = 10,
    parameter LATENCY = 10,
    parameter TAG_BITS = 2,
    parameter MAX_EXTRA = 255,
    parameter MAX_STALL = 90
) (
    input clk,
    input rst,
    input req_valid,
    output req_ready,
    input req_write,
    input [ADDR_BITS-1:0] req_addr,
    input [WIDTH-1:0] req_wdata,
    input [WIDTH/8-1:0] req_wmask,
    input [TAG_BITS-1:0] req_tag,
    output resp_valid,
    output [WIDTH-1:0] resp_data,
    output [TAG_BITS-1:0] resp_tag,
    input dump_valid,
    input [ADDR_BITS-1:0] dump_lo,
    input [ADDR_BITS-1:0] dump_hi
);
    import "DPI-C" function int dypipe_dram_open(input string path, input int beat_bytes,
                                                 input int depth);
    import "DPI-C" function void dypipe_dram_read(input int addr, output bit [WIDTH-1:0] beat);
    import "DPI-C" function void dypipe_dram_write(input int addr, input bit [WIDTH-1:0] data,
                                                   input bit [WIDTH/8-1:0] mask);
    import "DPI-C" function int dypipe_dram_dump(input string path, input int lo, input int hi);
    bit [WIDTH-1:0] read_beat;

    // -- timing: the generator, the stall threshold (out of 256) and the extra latency ---------
    reg random_on;
    reg [31:0] seed, rng;
    integer stall_pct, extra_max;
    reg [8:0] stall_below;
    wire [31:0] rng_next0 = rng ^ (rng << 13);
    wire [31:0] rng_next1 = rng_next0 ^ (rng_next0 >> 17);
    wire [31:0] rng_next = rng_next1 ^ (rng_next1 << 5);
    assign req_ready = ~random_on | ({1'b0, rng[7:0]} >= stall_below);
    wire [31:0] extra = random_on ? {16'b0, rng[31:16]} % (extra_max + 1) : 32'd0;

    // -- reads in flight: a queue of (due cycle, data, tag), dues strictly increasing ------------
    // A response is due at most LATENCY + MAX_EXTRA cycles after its request, so the queue never
    // holds more entries than that.
    localparam Q_BITS = $clog2(LATENCY + MAX_EXTRA + 2);
    localparam Q_DEPTH = 1 << Q_BITS;
    reg [63:0] q_due [0:Q_DEPTH-1];
    reg [WIDTH-1:0] q_data [0:Q_DEPTH-1];
    reg [TAG_BITS-1:0] q_tag [0:Q_DEPTH-1];
    reg [Q_BITS-1:0] head, tail;
    reg [Q_BITS:0] count;
    reg [63:0] now, last_due;
    wire in_range = {1'b0, req_addr} < DEPTH;
    wire accept = req_valid & req_ready;
    wire read = accept & ~req_write;
    wire [63:0] earliest = now + LATENCY + {32'b0, extra};
    wire [63:0] due = (count != 0 && last_due >= earliest) ? last_due + 1 : earliest;

    assign resp_valid = (count != 0) && (q_due[head] == now);
    assign resp_data = q_data[head];
    assign resp_tag = q_tag[head];

    wire [31:0] addr = 32'(req_addr);
    always @(posedge clk) begin
        if (dump_valid && dypipe_dram_dump(dump_path, 32'(dump_lo), 32'(dump_hi)) != 0) begin
            $display("dypipe_dram: cannot write %0s", dump_path);
            $finish;
        end
        if (rst) begin
            head <= 0;
            tail <= 0;
            count <= 0;
            now <= 0;
            rng <= seed;
        end else begin
            now <= now + 1;
            rng <= rng_next;
            if (read) begin
                read_beat = {WIDTH{1'b0}};
                if (in_range) dypipe_dram_read(addr, read_beat);
                q_due[tail] <= due;
                q_data[tail] <= read_beat;
                q_tag[tail] <= req_tag;
                tail <= tail + 1;
                last_due <= due;
            end
            if (resp_valid) head <= head + 1;
            count <= count + {{Q_BITS{1'b0}}, read} - {{Q_BITS{1'b0}}, resp_valid};
            if (accept & req_write & in_range)
                dypipe_dram_write(addr, req_wdata, req_wmask);
        end
    end

    string init_path, dump_path;
    initial begin
        random_on = $value$plusargs("DRAM_SEED=%d", seed);
        if (!random_on) seed = 32'd1;
        if (seed == 0) begin                    // xorshift never leaves 0
            $display("dypipe_dram: +DRAM_SEED must not be 0");
            $finish;
        end
        rng = seed;
        if (!$value$plusargs("DRAM_STALL=%d", stall_pct)) stall_pct = 25;
        if (!$value$plusargs("DRAM_EXTRA=%d", extra_max)) extra_max = 16;
        if (stall_pct < 0 || stall_pct > MAX_STALL || extra_max < 0 || extra_max > MAX_EXTRA)
        begin
            $display("dypipe_dram: +DRAM_STALL must be 0..%0d and +DRAM_EXTRA 0..%0d", MAX_STALL,
                     MAX_EXTRA);
            $finish;
        end
        stall_below = (stall_pct * 256 + 50) / 100;
        if (!$value$plusargs("DRAM_INIT=%s", init_path)) init_path = "";
        if (dypipe_dram_open(init_path, WIDTH / 8, DEPTH) != 0) begin
            $display("dypipe_dram: no memory of %0d beats of %0d bytes, or %0s is not an image",
                     DEPTH, WIDTH / 8, init_path);
            $finish;
        end
        if (!$value$plusargs("DRAM_DUMP=%s", dump_path)) dump_path = "dram_dump.hex";
    end

endmodule

// DRAM model: the testbench side of the accelerator's memory port.
//
// One request per cycle (reads and writes share the port; there is no back-pressure). A write
// updates the bytes selected by req_wmask at the clock edge. A read returns mem[req_addr], as it
// was when requested, with resp_valid high exactly LATENCY cycles after the request cycle and its
// tag echoed; reads come back in order. Addresses are in WIDTH-bit beats; beats at or past
// DEPTH read as zero and ignore writes (the accelerator checks ranges itself).
//
// The memory is filled at time 0 from the binary file named by plusarg +DRAM_INIT=<path>
// ($fread: each beat WIDTH/8 bytes, most significant byte first). While dump_valid is high at a
// clock edge, beats dump_lo..dump_hi are written with $writememh to +DRAM_DUMP=<path>.
module dypipe_dram #(
    parameter WIDTH = 64,
    parameter DEPTH = 1024,
    parameter ADDR_BITS = 10,
    parameter LATENCY = 10,
    parameter TAG_BITS = 2
) (
    input clk,
    input rst,
    input req_valid,
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
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    // Responses wait in a circular buffer of LATENCY entries: the entry written LATENCY cycles
    // ago is the one about to be overwritten now, so it is the one on the outputs.
    localparam PTR_BITS = LATENCY > 1 ? $clog2(LATENCY) : 1;
    reg [PTR_BITS-1:0] ptr;
    reg pend_valid [0:LATENCY-1];
    reg [WIDTH-1:0] pend_data [0:LATENCY-1];
    reg [TAG_BITS-1:0] pend_tag [0:LATENCY-1];
    wire in_range = {1'b0, req_addr} < DEPTH;

    assign resp_valid = pend_valid[ptr];
    assign resp_data = pend_data[ptr];
    assign resp_tag = pend_tag[ptr];

    integer i;
    always @(posedge clk) begin
        if (rst) begin
            for (i = 0; i < LATENCY; i = i + 1) pend_valid[i] <= 1'b0;
            ptr <= 0;
        end else begin
            pend_valid[ptr] <= req_valid & ~req_write;
            pend_data[ptr] <= in_range ? mem[req_addr] : {WIDTH{1'b0}};
            pend_tag[ptr] <= req_tag;
            ptr <= (ptr == LATENCY - 1) ? 0 : ptr + 1;
            if (req_valid & req_write & in_range)
                for (i = 0; i < WIDTH / 8; i = i + 1)
                    if (req_wmask[i]) mem[req_addr][i*8 +: 8] <= req_wdata[i*8 +: 8];
        end
    end

    reg [8*1024-1:0] init_path;
    reg [8*1024-1:0] dump_path;
    integer fd;
    integer loaded;
    initial begin
        if ($value$plusargs("DRAM_INIT=%s", init_path)) begin
            fd = $fopen(init_path, "rb");
            if (fd == 0) begin
                $display("dypipe_dram: cannot open %0s", init_path);
                $finish;
            end
            loaded = $fread(mem, fd);
            $fclose(fd);
        end
        if (!$value$plusargs("DRAM_DUMP=%s", dump_path)) dump_path = "dram_dump.hex";
    end

    always @(posedge clk) begin
        if (dump_valid) $writememh(dump_path, mem, dump_lo, dump_hi);
    end
endmodule

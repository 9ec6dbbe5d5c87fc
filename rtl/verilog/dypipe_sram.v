// On-chip SRAM bank of the global buffer. Two write ports: a narrow one that writes one lane
// (a DMA beat) and a full-row one; two registered read ports (read-before-write). Written as
// plain Verilog so that a large bank needs no zero-fill initial block (docs/architecture.md,
// "Global buffer"). When both write ports hit one lane of one row in the same cycle, the lane
// port's data is kept, as in the Amaranth description (rtl/sram.py); the dispatcher never
// issues tasks that could.
module dypipe_sram #(
    parameter WIDTH = 64,
    parameter DEPTH = 256,
    parameter ADDR_BITS = 8,
    parameter LANES = 1,
    parameter LANE_BITS = 1
) (
    input clk,
    input lane_en,
    input [ADDR_BITS-1:0] lane_addr,
    input [LANE_BITS-1:0] lane_sel,
    input [WIDTH/LANES-1:0] lane_data,
    input row_en,
    input [ADDR_BITS-1:0] row_addr,
    input [WIDTH-1:0] row_data,
    input r0_en,
    input [ADDR_BITS-1:0] r0_addr,
    output reg [WIDTH-1:0] r0_data,
    input r1_en,
    input [ADDR_BITS-1:0] r1_addr,
    output reg [WIDTH-1:0] r1_data
);
    localparam LANE = WIDTH / LANES;
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    always @(posedge clk) begin
        if (r0_en) r0_data <= mem[r0_addr];
        if (r1_en) r1_data <= mem[r1_addr];
        if (row_en) mem[row_addr] <= row_data;
        if (lane_en) mem[lane_addr][lane_sel * LANE +: LANE] <= lane_data;
    end
endmodule

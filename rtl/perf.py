"""Performance counters: one list of names, read by the top, the runner and the reports."""

__all__ = ["COUNTERS", "COUNTER_BITS", "COUNTER_LAG"]

COUNTER_BITS = 48

#: Cycles a counter's value lags what it counts: each increment is registered before it is
#: added (the top's ``done`` and ``error`` come late enough to see every counter complete).
COUNTER_LAG = 1

#: ``name -> what it counts``. Every counter but ``boot_cycles`` runs while the machine runs
#: (from the end of the boot copy to HALT or an error).
COUNTERS = {
    "cycles": "cycles from the first instruction to HALT",
    "busy_io": "cycles the IO (load) module ran a task",
    "busy_pfu": "cycles the PFU module ran a task",
    "busy_store": "cycles the Store module ran a task",
    "ctrl_active": "cycles the control unit executed instructions (not stalled)",
    "ctrl_stall": "cycles the control unit waited (memory, full task ring, WAIT/HALT, "
                  "a copy of instructions: OVERLAY, or PREFETCH, ENTER, LW, SW behind one)",
    "ctx_load": "cycles module sequencers spent reading contexts (LDC)",
    "stall_hazard": "cycles a task its module had taken waited on a data conflict (for go)",
    "stall_busy": "cycles a task waited for its module to release an older one",
    "dram_read_bytes": "bytes read from DRAM",
    "dram_write_bytes": "bytes written to DRAM",
    "dram_refused": "cycles a memory request waited because the memory was not ready "
                    "(back-pressure on the port)",
    "macs": "multiply-accumulates done by the PFU array",
    "tasks": "tasks committed (SAVEPC, a SPAWN, TPLPC after TPLTASK), counted as each reaches "
             "the dispatcher",
    "datapath_idle": "cycles no DMA engine moved data and the PFU computed nothing: control "
                     "flow, context loads and dispatch only (CF & CTX of the paper's Fig.11)",
    "boot_cycles": "cycles the boot copy took (before the first instruction; not in cycles)",
}

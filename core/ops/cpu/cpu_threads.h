// The CPU ops' one thread team: its size (--cpu-threads, default the machine's physical cores)
// and the rule that keeps OpenBLAS from starting a second team beside it.
//
// Every parallel region of the CPU ops is an OpenMP region of threads() threads; OpenBLAS is set
// to one thread and called per slice of output rows from inside those regions, so the process
// never runs more busy threads than threads(). Thread-safety: threads() may be read anywhere;
// set_threads is for startup, before forwards run.
#pragma once

namespace sable::ops::cpu {

// Physical cores this process may run on: distinct (package, core) pairs among the CPUs of its
// affinity mask, from /sys/devices/system/cpu; the mask's CPU count when topology is unreadable.
int physical_cores();

// n > 0: that many threads; n <= 0: physical_cores(). Also sets OpenBLAS to one thread.
void set_threads(int n);
int threads();
// Makes the OpenMP regions the calling thread opens without a num_threads clause (those of
// plugins: the CPU attention backend) use threads() as well. The runner calls it before a forward.
void adopt_threads();

}  // namespace sable::ops::cpu

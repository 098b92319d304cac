// Allocation failure on demand, for the tests that every call survives it: linking fail_nth_allocation.cpp
// replaces this executable's global operator new and delete, every variant (plain, array, sized, aligned,
// nothrow). The dynamic linker binds the shared library's and libstdc++'s calls to them as well (ELF
// interposition: the executable comes first in the lookup order), so that the library's own allocations
// are counted and failed.
#pragma once

#include <cstdint>

namespace wb::test {

// Starts counting the allocations made from now on, and makes the one numbered fail_at (from 1; 0 fails none)
// fail as the standard says: std::bad_alloc from the throwing forms, nullptr from the nothrow ones. Only that
// one fails: the allocations after it succeed again.
void arm_allocation_failure(uint64_t fail_at);

// Stops counting; returns how many allocations were made since arm_allocation_failure.
uint64_t disarm_allocation_failure();

}  // namespace wb::test

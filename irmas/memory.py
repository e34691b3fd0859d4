"""glibc's malloc, set for what each program does with its memory (a no-op where the C library is not glibc).

torch frees and allocates tensors of megabytes on every call. By default glibc maps blocks over 32 MB (and many
smaller ones) straight from the system and unmaps them when freed, and hands back what is freed at the top of
its heap: the next call faults every page in again and the kernel zeroes it, at ~10 us a page on the project's
VMs. In a fresh process that was half of musicnn's encoding time and two thirds of the three-band STFT's; over a
whole training run (glibc raises its threshold as it goes), 2-5 minutes of 33-36. Batch jobs (rendering, training,
encoding, prediction from the command line) therefore keep what they free; the app, which must stay small under
many clients, hands large blocks back as it frees them.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory() -> None:
    """Batch jobs: allocate every block from the heap (never mmap) and never return freed memory to the system,
    so a tensor freed in one step is reused by the next without page faults. The process keeps its peak RSS."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """The app: cap glibc's malloc arenas before the server starts its threads.

    Gradio runs each request in one of many worker threads, and glibc gives each thread an arena of its own
    that keeps what it freed: under 8 concurrent clients the app's RSS grew ~300 MB in four rounds (bench/load.py).
    Blocks over 1 MB go back to the system when freed: with them kept in the heap up to 32 MB, a request took
    385 ms instead of 472, but the peak RSS under load reached 501 MB, over the app's 500.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)


def release_freed_memory() -> None:
    """Hand the pages of what was freed back to the system (glibc's malloc_trim), even in a batch job that keeps
    what it frees: the app after each request (the fragments left between the heap's live blocks added ~10 MB of
    peak RSS per round of `bench load`), training once the clips are encoded."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)

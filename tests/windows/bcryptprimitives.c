/* A stand-in bcryptprimitives.dll for running the Windows tests under wine 8.0, which lacks
 * ProcessPrng: Rust's std imports it for random numbers (HashMap seeds). It forwards to
 * advapi32's RtlGenRandom (SystemFunction036), which wine has. Built by scripts/windows.sh with
 * mingw; never shipped, never used on Windows itself. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

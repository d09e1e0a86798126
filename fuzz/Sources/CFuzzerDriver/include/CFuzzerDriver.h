#ifndef C_FUZZER_DRIVER_H
#define C_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's own driver (FuzzerDriver.cpp), in the runtime -sanitize=fuzzer links.
/// Called from the harness's main because SwiftPM renames an executable's main on
/// Linux (--defsym main=<module>_main), so libFuzzer's main is never the one run.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif

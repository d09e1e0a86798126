#include <systemd/sd-daemon.h>
// Entries are sent with the fields overseerd gives, without CODE_FILE/CODE_LINE of a C caller.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

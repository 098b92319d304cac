#include "weightbus/weightbus.h"

extern "C" WB_API uint32_t wb_version(void) { return WB_VERSION; }

extern "C" WB_API const char *wb_version_string(void) { return WB_VERSION_STRING; }

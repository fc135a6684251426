/* The no-op wasi:logging of world.wit (see stub.sh). */
#include "logging_stub.h"

void exports_wasi_logging_logging_log(exports_wasi_logging_logging_level_t level,
                                      logging_stub_string_t *context,
                                      logging_stub_string_t *message) {
    (void)level;
    logging_stub_string_free(context);
    logging_stub_string_free(message);
}

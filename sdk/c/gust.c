/*
 * gust.c: the helper of gust.h over the generated bindings (handler.h,
 * from `wit-bindgen c` for gust:function/handler): errors and the export
 * that calls gust_handle. The rest is beside it, one part of gust.h each:
 * request.c (the request view), response.c (the response builder), kv.c
 * (key-value), config.c (config and logging); what they share is in
 * gust_internal.h. See gust.h.
 */
#include "gust_internal.h"

/* ---- Errors ----------------------------------------------------------- */

char gust__last_error[GUST__ERROR_MAX];

const char *gust_strerror(int err) { return gust__strerror(err); }

const char *gust_last_error(void) { return gust__last_error; }

/* ---- The export ------------------------------------------------------- */

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    gust_request req = {.handle = request};
    gust_response res = {.outparam = response_out, .status = 200};
    gust__last_error[0] = 0;
    gust_handle(&req, &res);
    gust__response_finish(&res);
    free(res.buf);
    gust__request_free(&req);
}

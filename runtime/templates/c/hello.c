/* {{name}}: a gust function in C. GET / and GET /hello/{name}.
 *
 * gust.h (in gust's sdk/c) is the helper: the request (method, path,
 * query, headers, route parameters, body), the response (status,
 * headers, body), key-value, config and logging. */
#include "gust.h"

void gust_handle(gust_request *req, gust_response *res) {
    const char *name = gust_req_param(req, "name"); /* NULL on the route "/" */
    gust_res_set_header(res, "content-type", "text/plain; charset=utf-8");
    gust_res_printf(res, "Hello, %s!\n", name ? name : "world");
}

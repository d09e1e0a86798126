#ifndef COVERSEER_FETCH_SHIMS_H
#define COVERSEER_FETCH_SHIMS_H

#include <curl/curl.h>

/// Non-variadic wrappers of curl_easy_setopt and curl_easy_getinfo, which Swift
/// cannot call directly. Each passes its argument with the type the option expects.

/// The signature of CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
typedef size_t (*ofs_data_callback)(char *data, size_t size, size_t count, void *context);

CURLcode ofs_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ofs_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ofs_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ofs_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ofs_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ofs_setopt_data_callback(CURL *handle, CURLoption option, ofs_data_callback value);

CURLcode ofs_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode ofs_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
/// The string stays owned by the handle; it is valid until the next transfer or cleanup.
CURLcode ofs_getinfo_string(CURL *handle, CURLINFO info, const char **value);

#endif

/* libcurl, loaded when first called: the functions of its API that shoal
 * uses, defined here and forwarded to libcurl.so.4, which the binary does not
 * link. Every CLI command but the few that reach a registry through the
 * daemon would otherwise load libcurl and the ~25 libraries it needs (GnuTLS,
 * Kerberos, LDAP, RTMP, SSH2...) at start: ~4 ms of CPU per command on the
 * reference machine. Without libcurl installed, the calls fail as libcurl
 * reports failures (NULL handles, CURLE_FAILED_INIT), with the reason logged
 * once. libcurl's global state (curl_global_init) is set up at the first
 * handle, not at start: a daemon that never pulls never loads libcurl. */
#define CURL_DISABLE_TYPECHECK /* the real functions, not the checking macros */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>

#include "base/lazy_lib.h"

static struct lazy_lib libcurl = LAZY_LIB("libcurl.so.4");

#define CURL_FN(name) LAZY_FN(&libcurl, name)

/* Once per process, whichever thread makes the first handle: curl_global_init
 * is not thread-safe in every libcurl build. Not forwarded: shoal has no
 * other call of it, and one would not link. */
static void global_init_once(void)
{
    CURL_FN(curl_global_init);
    if (fn)
        fn(CURL_GLOBAL_DEFAULT);
}

static void global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init_once);
}

CURL *curl_easy_init(void)
{
    global_init();
    CURL_FN(curl_easy_init);
    return fn ? fn() : NULL;
}

/* The value's type follows from the option's number, as in libcurl itself. */
CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    CURL_FN(curl_easy_setopt);
    if (fn == NULL)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    if (option < CURLOPTTYPE_OBJECTPOINT)
        rc = fn(curl, option, va_arg(ap, long));
    else if (option < CURLOPTTYPE_OFF_T)
        rc = fn(curl, option, va_arg(ap, void *)); /* objects and functions */
    else if (option < CURLOPTTYPE_BLOB)
        rc = fn(curl, option, va_arg(ap, curl_off_t));
    else
        rc = fn(curl, option, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO value is a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...)
{
    CURL_FN(curl_easy_getinfo);
    if (fn == NULL)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = fn(curl, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode curl_easy_perform(CURL *curl)
{
    CURL_FN(curl_easy_perform);
    return fn ? fn(curl) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *curl)
{
    CURL_FN(curl_easy_cleanup);
    if (fn)
        fn(curl);
}

const char *curl_easy_strerror(CURLcode code)
{
    CURL_FN(curl_easy_strerror);
    return fn ? fn(code) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *curl, const char *string, int length)
{
    CURL_FN(curl_easy_escape);
    return fn ? fn(curl, string, length) : NULL;
}

void curl_free(void *p)
{
    CURL_FN(curl_free);
    if (fn)
        fn(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *string)
{
    CURL_FN(curl_slist_append);
    return fn ? fn(list, string) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    CURL_FN(curl_slist_free_all);
    if (fn)
        fn(list);
}

CURLM *curl_multi_init(void)
{
    global_init();
    CURL_FN(curl_multi_init);
    return fn ? fn() : NULL;
}

CURLMcode curl_multi_add_handle(CURLM *multi, CURL *curl)
{
    CURL_FN(curl_multi_add_handle);
    return fn ? fn(multi, curl) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *multi, CURL *curl)
{
    CURL_FN(curl_multi_remove_handle);
    return fn ? fn(multi, curl) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_perform(CURLM *multi, int *running)
{
    CURL_FN(curl_multi_perform);
    return fn ? fn(multi, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_poll(CURLM *multi, struct curl_waitfd extra[], unsigned int extra_nfds,
                          int timeout_ms, int *numfds)
{
    CURL_FN(curl_multi_poll);
    return fn ? fn(multi, extra, extra_nfds, timeout_ms, numfds) : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *multi, int *msgs_in_queue)
{
    CURL_FN(curl_multi_info_read);
    return fn ? fn(multi, msgs_in_queue) : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *multi)
{
    CURL_FN(curl_multi_cleanup);
    return fn ? fn(multi) : CURLM_INTERNAL_ERROR;
}

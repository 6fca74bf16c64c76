/* Logging to stderr with a level and a timestamp. The daemon's stderr is its log. */
#ifndef SHOAL_BASE_LOG_H
#define SHOAL_BASE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void slog(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rate limiting for messages an attacker can trigger at will (refused
 * connections): log_limit_allow() is true at most once per interval_ms and
 * then reports in *suppressed how many calls it said no to since. */
struct log_limit {
    unsigned long long last_ms;
    unsigned long suppressed;
    int logged; /* at least once */
};
int log_limit_allow(struct log_limit *l, unsigned long long now_ms, unsigned long long interval_ms,
                    unsigned long *suppressed);

#define log_debug(...) slog(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) slog(LOG_INFO, __VA_ARGS__)
#define log_warn(...) slog(LOG_WARN, __VA_ARGS__)
#define log_error(...) slog(LOG_ERROR, __VA_ARGS__)

#endif

/* Logging to stderr with a level and a timestamp. The daemon's stderr is its log. */
#ifndef SHOAL_BASE_LOG_H
#define SHOAL_BASE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void slog(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) slog(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) slog(LOG_INFO, __VA_ARGS__)
#define log_warn(...) slog(LOG_WARN, __VA_ARGS__)
#define log_error(...) slog(LOG_ERROR, __VA_ARGS__)

#endif

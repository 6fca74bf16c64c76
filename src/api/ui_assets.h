/* The dashboard's files (src/ui/), compiled in by scripts/embed_ui.py. */
#ifndef SHOAL_API_UI_ASSETS_H
#define SHOAL_API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;         /* "index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
};

/* Terminated by an entry with name NULL. */
extern const struct ui_asset ui_assets[];
/* Short content hash of all files: the cache-busting ?v= of the page's links. */
extern const char ui_assets_version[];

#endif

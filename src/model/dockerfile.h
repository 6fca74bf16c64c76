/* Dockerfiles, as far as shoal reads them: the base images, so that a build
 * gets its bases from the store (agent/build.c) and several builds run base
 * images first (the CLI). Pure. */
#ifndef SHOAL_MODEL_DOCKERFILE_H
#define SHOAL_MODEL_DOCKERFILE_H

#include <jansson.h>

/* The base images the Dockerfile `text` names, in order, each once (FROM
 * lines; flags such as --platform skipped; stage names, "scratch" and
 * references with variables left out): a new array of strings. */
json_t *dockerfile_bases(const char *text);

#endif

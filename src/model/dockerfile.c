/* Dockerfiles, as far as shoal reads them (dockerfile.h). */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "model/dockerfile.h"

static bool listed_ci(json_t *list, const char *s)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (strcasecmp(json_string_value(e), s) == 0) return true;
    return false;
}

/* One FROM line's words after FROM: [--flag...] IMAGE [AS NAME]. */
static void from_line(char *rest, json_t *bases, json_t *stages)
{
    char *save = NULL, *word = strtok_r(rest, " \t\r", &save);
    while (word && strncmp(word, "--", 2) == 0)
        word = strtok_r(NULL, " \t\r", &save);
    if (word == NULL)
        return;
    char *image = word;
    char *as = strtok_r(NULL, " \t\r", &save);
    char *stage = as && strcasecmp(as, "as") == 0 ? strtok_r(NULL, " \t\r", &save) : NULL;
    if (strcasecmp(image, "scratch") != 0 && strchr(image, '$') == NULL &&
        !listed_ci(stages, image) && !listed_ci(bases, image))
        json_array_append_new(bases, json_string(image));
    if (stage)
        json_array_append_new(stages, json_string(stage));
}

json_t *dockerfile_bases(const char *text)
{
    json_t *bases = json_array(), *stages = json_array();
    char *copy = xstrdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        if (strncasecmp(line, "FROM", 4) == 0 && (line[4] == ' ' || line[4] == '\t'))
            from_line(line + 5, bases, stages);
    }
    free(copy);
    json_decref(stages);
    return bases;
}

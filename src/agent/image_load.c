/* Bringing images in (image.h): `image import` of a root filesystem tar and
 * `image load` of a `docker save` archive or an OCI image layout. The outer
 * archive is extracted into a work directory; each image's layers and config
 * then go into the store (image_store.c) and its description is returned. */
#include "agent/image.h"

#include <archive.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/image_int.h"
#include "base/json_get.h"
#include "base/util.h"
#include "model/imageref.h"

#define MAX_INDEX_DEPTH 4 /* nested OCI indexes followed at most */
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- tags --------------------------------------------------------------- */

static bool array_has_string(json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Appends `desc` (stolen) to `images`, merging tags into an earlier
 * description of the same image (an archive may name one image twice). */
static void add_image(json_t *images, json_t *desc)
{
    const char *id = jstr(desc, "id");
    size_t i, j;
    json_t *old, *tag;
    json_array_foreach(images, i, old)
    {
        if (strcmp(jstr(old, "id"), id) != 0)
            continue;
        json_t *old_tags = json_object_get(old, "tags");
        json_array_foreach(json_object_get(desc, "tags"), j, tag)
        {
            if (!array_has_string(old_tags, json_string_value(tag)))
                json_array_append(old_tags, tag);
        }
        json_decref(desc);
        return;
    }
    json_array_append_new(images, desc);
}

/* Normalises each tag of `names` (strings; NULL or null = none) into a new array. */
static json_t *normalize_tags(json_t *names, struct serr *err)
{
    json_t *tags = json_array();
    if (names == NULL || json_is_null(names))
        return tags;
    if (!json_is_array(names)) {
        serr_set(err, SERR_INVALID, "tags must be an array of strings");
        goto fail;
    }
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        char ref[512];
        if (!json_is_string(n)) {
            serr_set(err, SERR_INVALID, "tags must be an array of strings");
            goto fail;
        }
        if (image_normalize_ref(json_string_value(n), ref, sizeof(ref), err) < 0)
            goto fail;
        if (!array_has_string(tags, ref))
            json_array_append_new(tags, json_string(ref));
    }
    return tags;
fail:
    json_decref(tags);
    return NULL;
}

/* ---- import ------------------------------------------------------------- */

static const char *host_architecture(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#elif defined(__i386__)
    return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

/* The config blob of an imported image. Serialised with sorted keys and no
 * timestamp so that importing the same rootfs always gives the same id. */
static char *import_config(const char *diff_hex)
{
    json_t *cfg = json_pack("{s:s, s:s, s:{s:[s]}, s:{s:s, s:[s+]}}", "architecture",
                            host_architecture(), "os", "linux", "config", "Env", DEFAULT_PATH,
                            "rootfs", "type", "layers", "diff_ids", "sha256:", diff_hex);
    char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cfg);
    if (text == NULL)
        abort(); /* allocation failure */
    return text;
}

int image_import(struct image_store *s, const char *tar_path, const char *ref, json_t **image,
                 struct serr *err)
{
    char tag[512];
    if (image_normalize_ref(ref, tag, sizeof(tag), err) < 0)
        return -1;
    char hex[HEX_LEN + 1];
    uint64_t size;
    if (image_ensure_layer(s, tar_path, NULL, hex, &size, err) < 0)
        return serr_wrap(err, "import %s", tar_path);
    char *cfg_text = import_config(hex);
    if (image_keep_config(s, cfg_text, strlen(cfg_text), err) < 0) {
        free(cfg_text);
        return -1;
    }
    json_t *cfg = json_loads(cfg_text, 0, NULL);
    char id[HEX_LEN + 1];
    image_sha256_hex(cfg_text, strlen(cfg_text), id);
    json_t *tags = json_pack("[s]", tag);
    json_t *layers = json_pack("[s+]", "sha256:", hex);
    *image = image_description(id, tags, layers, size, cfg);
    json_decref(layers);
    json_decref(tags);
    json_decref(cfg);
    free(cfg_text);
    return 0;
}

/* ---- load --------------------------------------------------------------- */

static const int outer_extract_flags =
    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS;

/* Extracts the outer archive (docker save / OCI layout) into `dest`. */
static int extract_outer(const char *path, const char *dest, struct serr *err)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    int rc;
    if (archive_read_open_filename(a, path, READ_BLOCK) != ARCHIVE_OK) {
        rc = image_reader_fail(a, "open", err);
    } else {
        const struct image_unpack_opts opts = {.only_plain_files = true};
        rc = image_unpack_all(a, dest, outer_extract_flags, &opts, err);
    }
    archive_read_free(a);
    return rc;
}

/* Resolves an archive member named by the archive's own JSON. Symlinks are
 * allowed (docker save links repeated layers) but must stay inside. */
static char *member_path(const char *work, const char *rel, struct serr *err)
{
    if (rel == NULL || !image_relative_path_ok(rel)) {
        serr_set(err, SERR_INVALID, "invalid archive member name '%s'", rel ? rel : "(none)");
        return NULL;
    }
    char *joined = xasprintf("%s/%s", work, rel);
    char *real = realpath(joined, NULL);
    free(joined);
    if (real == NULL) {
        serr_set(err, SERR_INVALID, "archive member %s: %s", rel, strerror(errno));
        return NULL;
    }
    size_t n = strlen(work);
    if (strncmp(real, work, n) != 0 || real[n] != '/') {
        serr_set(err, SERR_INVALID, "archive member %s points outside the archive", rel);
        free(real);
        return NULL;
    }
    return real;
}

static json_t *load_json_member(const char *work, const char *rel, char hex[HEX_LEN + 1],
                                struct serr *err)
{
    char *path = member_path(work, rel, err);
    if (path == NULL)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    json_t *j = NULL;
    if (read_file(path, &text, &len, err) < 0) {
        serr_wrap(err, "archive member %s", rel);
        if (err)
            err->kind = SERR_INVALID; /* e.g. a directory where a file belongs */
        goto out;
    }
    image_sha256_hex(text, len, hex);
    json_error_t jerr;
    j = json_loadb(text, len, 0, &jerr);
    if (j == NULL)
        serr_set(err, SERR_INVALID, "%s: invalid JSON: %s (line %d)", rel, jerr.text, jerr.line);
out:
    free(text);
    free(path);
    return j;
}

/* What one image of an archive consists of, as named by its manifest. */
struct image_src {
    const char *config;        /* member name of the config blob */
    const char *config_digest; /* hex it must hash to (OCI), or NULL */
    json_t *layer_files;       /* member names, bottom first */
    json_t *tags;              /* normalised */
};

/* image_keep_config for an archive's member. */
static int keep_config_member(struct image_store *s, const char *work, const char *rel,
                              struct serr *err)
{
    char *path = member_path(work, rel, err);
    char *data = NULL;
    size_t len = 0;
    int rc = path ? read_file(path, &data, &len, err) : -1;
    if (rc == 0)
        rc = image_keep_config(s, data, len, err);
    free(data);
    free(path);
    return rc;
}

/* Stores the layers of one image and appends its description to `out`. */
static int load_image(struct image_store *s, const char *work, const struct image_src *src,
                      json_t *out, struct serr *err)
{
    char id[HEX_LEN + 1];
    json_t *cfg = load_json_member(work, src->config, id, err);
    if (cfg == NULL)
        return -1;
    json_t *layers = json_array();
    uint64_t total = 0;
    int rc = -1;
    if (src->config_digest && strcmp(id, src->config_digest) != 0) {
        serr_set(err, SERR_INVALID, "config %s does not match its digest", src->config);
        goto out;
    }
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(src->layer_files)) {
        serr_set(err, SERR_INVALID, "config %s: rootfs.diff_ids does not match the layers",
                 src->config);
        goto out;
    }
    size_t i;
    json_t *file;
    json_array_foreach(src->layer_files, i, file)
    {
        const char *diff_id = json_string_value(json_array_get(diff_ids, i));
        char want[HEX_LEN + 1], got[HEX_LEN + 1];
        uint64_t size;
        if (!image_parse_digest(diff_id, want)) {
            serr_set(err, SERR_INVALID, "config %s: invalid diff_id", src->config);
            goto out;
        }
        /* Resolve first even when the layer is stored: the archive must be whole. */
        char *path = member_path(work, json_string_value(file), err);
        int r = path ? image_ensure_layer(s, path, want, got, &size, err) : -1;
        free(path);
        if (r < 0) {
            serr_wrap(err, "layer %s", json_string_value(file));
            goto out;
        }
        json_array_append_new(layers, json_sprintf("sha256:%s", got));
        total += size;
    }
    if (keep_config_member(s, work, src->config, err) < 0)
        goto out;
    add_image(out, image_description(id, src->tags, layers, total, cfg));
    rc = 0;
out:
    json_decref(layers);
    json_decref(cfg);
    return rc;
}

static bool is_string_array(json_t *a)
{
    size_t i;
    json_t *v;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

/* docker save: manifest.json = [{"Config", "RepoTags", "Layers"}, ...] */
static int load_docker(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    json_t *manifest = load_json_member(work, "manifest.json", hex, err);
    if (manifest == NULL)
        return -1;
    int rc = 0;
    if (!json_is_array(manifest) || json_array_size(manifest) == 0)
        rc = serr_set(err, SERR_INVALID, "manifest.json: expected a non-empty array");
    size_t i;
    json_t *m;
    json_array_foreach(manifest, i, m)
    {
        if (rc < 0)
            break;
        struct image_src src = {
            .config = jstr(m, "Config"),
            .layer_files = json_object_get(m, "Layers"),
        };
        if (src.config == NULL || !is_string_array(src.layer_files)) {
            rc = serr_set(err, SERR_INVALID,
                          "manifest.json: entry %zu needs Config and Layers (strings)", i);
            break;
        }
        src.tags = normalize_tags(json_object_get(m, "RepoTags"), err);
        rc = src.tags ? load_image(s, work, &src, out, err) : -1;
        json_decref(src.tags);
    }
    json_decref(manifest);
    return rc;
}

/* Reads the blob a descriptor points at, checking its digest. */
static json_t *load_oci_blob(const char *work, json_t *desc, struct serr *err)
{
    char want[HEX_LEN + 1], got[HEX_LEN + 1];
    const char *digest = jstr(desc, "digest");
    if (!image_parse_digest(digest, want)) {
        serr_set(err, SERR_INVALID, "unsupported or invalid digest '%s'", digest ? digest : "");
        return NULL;
    }
    char *rel = xasprintf("blobs/sha256/%s", want);
    json_t *blob = load_json_member(work, rel, got, err);
    free(rel);
    if (blob && strcmp(want, got) != 0) {
        serr_set(err, SERR_INVALID, "blob %s does not match its digest", digest);
        json_decref(blob);
        return NULL;
    }
    return blob;
}

/* The tag of an index entry: containerd's full name, else the OCI ref.name. */
static json_t *oci_tags(json_t *desc, struct serr *err)
{
    json_t *ann = json_object_get(desc, "annotations");
    json_t *name = json_object_get(ann, "io.containerd.image.name");
    if (!json_is_string(name))
        name = json_object_get(ann, "org.opencontainers.image.ref.name");
    if (!json_is_string(name))
        return json_array();
    json_t *names = json_pack("[O]", name);
    json_t *tags = normalize_tags(names, err);
    json_decref(names);
    return tags;
}

static bool platform_matches(json_t *desc)
{
    json_t *p = json_object_get(desc, "platform");
    const char *os = jstr(p, "os");
    const char *arch = jstr(p, "architecture");
    return p == NULL || (os && arch && strcmp(os, "linux") == 0 &&
                         strcmp(arch, host_architecture()) == 0);
}

static int load_oci_descriptor(struct image_store *s, const char *work, json_t *desc, json_t *tags,
                               int depth, json_t *out, struct serr *err);

/* A multi-platform index: load the manifest for this host. */
static int load_oci_index(struct image_store *s, const char *work, json_t *index, json_t *tags,
                          int depth, json_t *out, struct serr *err)
{
    if (depth >= MAX_INDEX_DEPTH)
        return serr_set(err, SERR_INVALID, "OCI indexes nested too deep");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(index, "manifests"), i, d)
    {
        if (platform_matches(d))
            return load_oci_descriptor(s, work, d, tags, depth + 1, out, err);
    }
    return serr_set(err, SERR_INVALID, "no image for linux/%s in the OCI index",
                    host_architecture());
}

static int load_oci_manifest(struct image_store *s, const char *work, json_t *manifest,
                             json_t *tags, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    const char *cfg_digest = jstr(json_object_get(manifest, "config"), "digest");
    json_t *layers = json_object_get(manifest, "layers");
    if (!image_parse_digest(cfg_digest, hex) || !json_is_array(layers))
        return serr_set(err, SERR_INVALID, "OCI manifest without a valid config or layers");
    char *cfg_rel = xasprintf("blobs/sha256/%s", hex);
    struct image_src src = {.config = cfg_rel, .config_digest = hex, .tags = tags};
    src.layer_files = json_array();
    int rc = 0;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        char lhex[HEX_LEN + 1];
        if (!image_parse_digest(jstr(l, "digest"), lhex)) {
            rc = serr_set(err, SERR_INVALID, "OCI manifest: layer %zu has an invalid digest", i);
            break;
        }
        json_array_append_new(src.layer_files, json_sprintf("blobs/sha256/%s", lhex));
    }
    if (rc == 0)
        rc = load_image(s, work, &src, out, err);
    json_decref(src.layer_files);
    free(cfg_rel);
    return rc;
}

static int load_oci_descriptor(struct image_store *s, const char *work, json_t *desc, json_t *tags,
                               int depth, json_t *out, struct serr *err)
{
    json_t *blob = load_oci_blob(work, desc, err);
    if (blob == NULL)
        return -1;
    int rc;
    if (json_is_array(json_object_get(blob, "manifests")))
        rc = load_oci_index(s, work, blob, tags, depth, out, err);
    else
        rc = load_oci_manifest(s, work, blob, tags, out, err);
    json_decref(blob);
    return rc;
}

/* OCI image layout: oci-layout + index.json -> manifests -> config + layers. */
static int load_oci(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    char hex[HEX_LEN + 1];
    json_t *layout = load_json_member(work, "oci-layout", hex, err);
    if (layout == NULL)
        return -1;
    bool layout_ok = json_is_string(json_object_get(layout, "imageLayoutVersion"));
    json_decref(layout);
    if (!layout_ok)
        return serr_set(err, SERR_INVALID, "oci-layout: no imageLayoutVersion");
    json_t *index = load_json_member(work, "index.json", hex, err);
    if (index == NULL)
        return -1;
    json_t *manifests = json_object_get(index, "manifests");
    int rc = 0;
    if (!json_is_array(manifests) || json_array_size(manifests) == 0)
        rc = serr_set(err, SERR_INVALID, "index.json: no manifests");
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
        if (rc < 0)
            break;
        json_t *tags = oci_tags(d, err);
        rc = tags ? load_oci_descriptor(s, work, d, tags, 0, out, err) : -1;
        json_decref(tags);
    }
    json_decref(index);
    return rc;
}

static bool member_exists(const char *work, const char *rel)
{
    char *path = xasprintf("%s/%s", work, rel);
    struct stat st;
    bool ok = lstat(path, &st) == 0;
    free(path);
    return ok;
}

/* Newer docker save archives are OCI layouts too; their manifest.json names
 * the tags directly, so it wins. */
static int load_extracted(struct image_store *s, const char *work, json_t *out, struct serr *err)
{
    if (member_exists(work, "manifest.json"))
        return load_docker(s, work, out, err);
    if (member_exists(work, "index.json"))
        return load_oci(s, work, out, err);
    return serr_set(err, SERR_INVALID,
                    "not a docker save archive (no manifest.json) nor an OCI layout (no "
                    "index.json)");
}

int image_load(struct image_store *s, const char *archive_path, json_t **images,
               struct serr *err)
{
    char *work = image_work_dir_make(s, "load", err);
    if (work == NULL)
        return -1;
    json_t *out = json_array();
    int rc = extract_outer(archive_path, work, err);
    if (rc == 0)
        rc = load_extracted(s, work, out, err);
    image_work_dir_discard(work);
    if (rc < 0) {
        json_decref(out);
        return serr_wrap(err, "load %s", archive_path);
    }
    *images = out;
    return 0;
}

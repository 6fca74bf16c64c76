/* Registry client, push: see registry_push() in registry.h.
 *
 * Per layer the blob to send is found or made first (prepare_layer), then
 * each blob goes up unless the registry has it: HEAD, a cross-repository
 * mount, or a monolithic upload (POST, then PUT ?digest=); the config blob
 * the same way; the manifest last, so a registry never names a blob it does
 * not have. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/registry_int.h"
#include "base/json_get.h"
#include "base/util.h"

/* A request's body: `data[len]` in memory, or the file `path` streamed. */
struct body {
    const char *data;
    size_t len;
    const char *path;
    uint64_t size;
    const char *content_type;
    const char *id; /* the layer's short id for "Pushing" progress, or NULL */
};

struct send_ctx {
    struct reg *g;
    const struct body *b;
    int64_t last_progress;
};

static int upload_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow;
    struct send_ctx *c = arg;
    int64_t now = mono_ms();
    if (c->b->id && ultotal > 0 && now - c->last_progress >= PROGRESS_EVERY_MS) {
        c->last_progress = now;
        reg_progress(c->g, c->b->id, "Pushing", (uint64_t)ulnow, (uint64_t)ultotal);
    }
    return 0;
}

/* One request: HEAD, POST (no body) or PUT (body), with the authorization. */
static int send_once(struct reg *g, const char *method, const char *url, const struct body *b,
                     struct reply *r, struct serr *err)
{
    memset(r, 0, sizeof(*r));
    r->max = MAX_TOKEN;
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    if (g->authz)
        headers = curl_slist_append(headers, g->authz);
    char ctype[200];
    snprintf(ctype, sizeof(ctype), "Content-Type: %s",
             b && b->content_type ? b->content_type : "application/octet-stream");
    headers = curl_slist_append(headers, ctype);
    char errbuf[CURL_ERROR_SIZE];
    CURL *h = reg_easy_new(g, url, headers, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* 202/201 carry Locations to keep */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reg_mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, reg_header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    struct send_ctx ctx = {.g = g, .b = b};
    FILE *f = NULL;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (b && b->path) {
        f = fopen(b->path, "rb");
        if (f == NULL) {
            curl_easy_cleanup(h);
            curl_slist_free_all(headers);
            return serr_errno(err, "open %s", b->path);
        }
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, f);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)b->size);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, upload_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, b ? b->data : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(b ? b->len : 0));
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "HEAD") == 0 ? NULL : method);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    int ret = 0;
    if (rc != CURLE_OK && !r->too_big)
        ret =
            serr_set(err, SERR_UNAVAILABLE, "%s %s: %s", method, url, reg_curl_message(rc, errbuf));
    if (f)
        fclose(f);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    buf_append(&r->body, &r->len, &r->cap, "\0", 1);
    r->len--;
    return ret;
}

/* send_once, answering a 401's challenge once (a token for pull,push). */
static int send_req(struct reg *g, const char *method, const char *url, const struct body *b,
                    struct reply *r, struct serr *err)
{
    int rc = send_once(g, method, url, b, r, err);
    if (rc == 0 && r->status == 401) {
        char challenge[sizeof(r->challenge)];
        snprintf(challenge, sizeof(challenge), "%s", r->challenge);
        reg_reply_free(r);
        char *scope = xasprintf("repository:%s:pull,push", g->ref.path);
        rc = reg_answer_challenge(g, challenge, scope, err);
        free(scope);
        if (rc == 0)
            rc = send_once(g, method, url, b, r, err);
        if (rc == 0 && r->status == 401) {
            reg_reply_free(r);
            rc = reg_unauthorized(g, err);
        }
    }
    return rc;
}

/* An error from the registry about `what`, its own words included. */
static int push_failed(struct reg *g, const struct reply *r, const char *what, struct serr *err)
{
    char msg[300];
    reg_error_text(r, msg, sizeof(msg));
    if (r->status == 401 || r->status == 403)
        return serr_set(err, SERR_INVALID,
                        "push access denied for %s (registry %s answered %ld%s): 'shoal login %s'",
                        g->ref.name, g->ref.domain, r->status, msg, g->ref.domain);
    return serr_set(err, SERR_UNAVAILABLE, "%s: registry %s answered %ld%s", what, g->ref.domain,
                    r->status, msg);
}

/* An upload session's Location made absolute, `digest=` appended. */
static char *upload_url(struct reg *g, const char *location, const char *digest)
{
    const char *sep = strchr(location, '?') ? "&" : "?";
    if (location[0] == '/')
        return xasprintf("%s%s%sdigest=%s", g->base, location, sep, digest);
    return xasprintf("%s%sdigest=%s", location, sep, digest);
}

/* What a blob push did, for the progress line and the count. */
enum blob_fate { BLOB_EXISTS, BLOB_MOUNTED, BLOB_PUSHED };

/* Pushes one blob unless the registry has it: HEAD first, then a mount from
 * `from` (another repository of the same registry; NULL: none), else a
 * monolithic upload (POST, then PUT ?digest= with the bytes). */
static int push_blob(struct reg *g, const char *digest, const struct body *b, const char *from,
                     enum blob_fate *fate, struct serr *err)
{
    struct reply r;
    char *url = xasprintf("%s/v2/%s/blobs/%s", g->base, g->ref.path, digest);
    int rc = send_req(g, "HEAD", url, NULL, &r, err);
    free(url);
    if (rc == 0 && r.status == 200) {
        *fate = BLOB_EXISTS;
        reg_reply_free(&r);
        return 0;
    }
    if (rc == 0 && r.status != 404)
        rc = push_failed(g, &r, digest, err);
    reg_reply_free(&r);
    if (rc < 0)
        return rc;
    if (from)
        url = xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", g->base, g->ref.path, digest,
                        from);
    else
        url = xasprintf("%s/v2/%s/blobs/uploads/", g->base, g->ref.path);
    rc = send_req(g, "POST", url, NULL, &r, err);
    free(url);
    if (rc == 0 && r.status == 201 && from) {
        *fate = BLOB_MOUNTED;
        reg_reply_free(&r);
        return 0;
    }
    if (rc == 0 && (r.status != 202 || r.location[0] == '\0'))
        rc = push_failed(g, &r, "start of an upload", err);
    if (rc < 0) {
        reg_reply_free(&r);
        return rc;
    }
    url = upload_url(g, r.location, digest);
    reg_reply_free(&r);
    rc = send_req(g, "PUT", url, b, &r, err);
    free(url);
    if (rc == 0 && r.status != 201)
        rc = push_failed(g, &r, digest, err);
    reg_reply_free(&r);
    if (rc == 0)
        *fate = BLOB_PUSHED;
    return rc;
}

/* One layer as pushed: the blob file, its digest and size, its media type. */
struct push_layer {
    char digest[72], id[13];
    uint64_t size;
    char *path;   /* the store's layer.blob, or a gzip made in the spool */
    bool spooled; /* path is ours to unlink */
    bool zstd;
};

static void push_layer_free(struct push_layer *l)
{
    if (l->spooled && l->path)
        unlink(l->path);
    free(l->path);
}

/* sha256 and size of a file, read in blocks. */
static int hash_file(const char *path, char digest[72], uint64_t *size, struct serr *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return serr_errno(err, "open %s", path);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        abort();
    char buf[65536];
    ssize_t n;
    int rc = 0;
    *size = 0;
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = serr_errno(err, "read %s", path);
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    close(fd);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    reg_format_digest(out, len, digest);
    return rc;
}

/* The gzip being written: spool file, hash and size as it streams. */
struct gz_out {
    int fd;
    EVP_MD_CTX *md;
    uint64_t size;
};

static la_ssize_t gz_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    struct gz_out *o = arg;
    if (write_all(o->fd, buf, n) < 0) {
        archive_set_error(a, errno, "write: %s", strerror(errno));
        return -1;
    }
    EVP_DigestUpdate(o->md, buf, n);
    o->size += n;
    return (la_ssize_t)n;
}

/* Copies the decompressed bytes of `in` into the gzip writer `out`. */
static int gz_copy(struct archive *in, struct archive *out, struct serr *err)
{
    struct archive_entry *e;
    if (archive_read_next_header(in, &e) != ARCHIVE_OK)
        return serr_set(err, SERR_INVALID, "read layer: %s", archive_error_string(in));
    struct archive_entry *raw = archive_entry_new();
    archive_entry_set_pathname(raw, "layer.tar");
    archive_entry_set_filetype(raw, AE_IFREG);
    int rc = archive_write_header(out, raw) == ARCHIVE_OK
                 ? 0
                 : serr_set(err, SERR_INTERNAL, "gzip layer: %s", archive_error_string(out));
    archive_entry_free(raw);
    char buf[65536];
    la_ssize_t n;
    while (rc == 0 && (n = archive_read_data(in, buf, sizeof(buf))) != 0) {
        if (n < 0)
            rc = serr_set(err, SERR_INVALID, "read layer: %s", archive_error_string(in));
        else if (archive_write_data(out, buf, (size_t)n) != n)
            rc = serr_set(err, SERR_INTERNAL, "gzip layer: %s", archive_error_string(out));
    }
    return rc;
}

/* A layer the store keeps uncompressed (or compressed otherwise than gzip
 * and zstd): a gzip of its tar in the spool, made with libarchive as it
 * streams, its digest computed on the way. No timestamp in the gzip header:
 * the same layer always gives the same blob, so a second push finds it. */
static int gzip_layer(struct reg *g, const char *src, struct push_layer *l, struct serr *err)
{
    char *tmpl = xasprintf("%s/push-XXXXXX", g->o->spool_dir);
    struct gz_out o = {.fd = mkostemp(tmpl, O_CLOEXEC)};
    if (o.fd < 0) {
        serr_errno(err, "create a spool file in %s", g->o->spool_dir);
        free(tmpl);
        return -1;
    }
    l->path = tmpl;
    l->spooled = true;
    o.md = EVP_MD_CTX_new();
    if (o.md == NULL || EVP_DigestInit_ex(o.md, EVP_sha256(), NULL) != 1)
        abort();
    struct archive *in = archive_read_new(), *out = archive_write_new();
    archive_read_support_filter_all(in);
    archive_read_support_format_raw(in);
    archive_write_add_filter_gzip(out);
    archive_write_set_format_raw(out);
    archive_write_set_filter_option(out, "gzip", "timestamp", NULL);
    archive_write_set_bytes_in_last_block(out, 1); /* no zero padding after the gzip */
    int rc = 0;
    if (archive_read_open_filename(in, src, 65536) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INVALID, "read layer %s: %s", src, archive_error_string(in));
    else if (archive_write_open(out, &o, NULL, gz_write, NULL) != ARCHIVE_OK)
        rc = serr_set(err, SERR_INTERNAL, "gzip layer: %s", archive_error_string(out));
    else
        rc = gz_copy(in, out, err);
    if (archive_write_close(out) != ARCHIVE_OK && rc == 0)
        rc = serr_set(err, SERR_INTERNAL, "gzip layer: %s", archive_error_string(out));
    archive_write_free(out);
    archive_read_free(in);
    close(o.fd);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(o.md, md, &mdlen);
    EVP_MD_CTX_free(o.md);
    reg_format_digest(md, mdlen, l->digest);
    l->size = o.size;
    return rc;
}

/* The blob to push for layer `diff_id`: the stored blob itself when it is
 * gzip or zstd (a pulled layer keeps its registry digest), else a gzip. */
static int prepare_layer(struct reg *g, const char *diff_id, struct push_layer *l, struct serr *err)
{
    char *blob = image_layer_blob(g->store, diff_id);
    if (blob == NULL)
        return serr_set(err, SERR_NOT_FOUND,
                        "layer %s has no blob in this node's store (stored before shoal kept "
                        "them, or on another manager): pull or load the image again",
                        diff_id);
    unsigned char magic[4] = {0};
    int fd = open(blob, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, magic, sizeof(magic)) : -1;
    if (fd >= 0)
        close(fd);
    int rc = 0;
    bool gzip = n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    l->zstd =
        n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd;
    if (n < 0)
        rc = serr_errno(err, "read %s", blob);
    else if (gzip || l->zstd) {
        l->path = blob;
        blob = NULL;
        rc = hash_file(l->path, l->digest, &l->size, err);
    } else
        rc = gzip_layer(g, blob, l, err);
    free(blob);
    reg_short_id(l->digest, l->id);
    return rc;
}

/* Another repository of this registry the image came from, for mounts. */
static char *mount_source(struct reg *g, json_t *image)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(image, "digests"), i, d)
    {
        struct image_ref r;
        if (image_parse_ref(json_string_value(d), &r, NULL) == 0 &&
            strcmp(r.domain, g->ref.domain) == 0 && strcmp(r.path, g->ref.path) != 0)
            return xstrdup(r.path);
    }
    return NULL;
}

static const char *const fate_words[] = {"Layer already exists", "Mounted from", "Pushed"};

static int push_layers(struct reg *g, struct push_layer *ls, size_t n, const char *from,
                       int *uploaded, struct serr *err)
{
    for (size_t i = 0; i < n; i++)
        reg_progress(g, ls[i].id, "Preparing", 0, 0);
    for (size_t i = 0; i < n; i++) {
        struct body b = {.path = ls[i].path, .size = ls[i].size, .id = ls[i].id};
        enum blob_fate fate;
        if (push_blob(g, ls[i].digest, &b, from, &fate, err) < 0)
            return serr_wrap(err, "layer %s", ls[i].digest);
        char line[400];
        snprintf(line, sizeof(line), "%s%s%s", fate_words[fate], fate == BLOB_MOUNTED ? " " : "",
                 fate == BLOB_MOUNTED ? from : "");
        reg_progress(g, ls[i].id, line, 0, 0);
        *uploaded += fate == BLOB_PUSHED;
    }
    return 0;
}

/* The manifest: Docker's v2 schema 2, or OCI when a layer is zstd (Docker's
 * media types have none). Newly allocated text. */
static char *make_manifest(const char *config_digest, size_t config_len,
                           const struct push_layer *ls, size_t n, const char **media_type)
{
    bool oci = false;
    for (size_t i = 0; i < n; i++)
        oci = oci || ls[i].zstd;
    *media_type = oci ? "application/vnd.oci.image.manifest.v1+json"
                      : "application/vnd.docker.distribution.manifest.v2+json";
    json_t *layers = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *mt = ls[i].zstd ? "application/vnd.oci.image.layer.v1.tar+zstd"
                         : oci      ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                    : "application/vnd.docker.image.rootfs.diff.tar.gzip";
        json_array_append_new(layers, json_pack("{s:s, s:I, s:s}", "mediaType", mt, "size",
                                                (json_int_t)ls[i].size, "digest", ls[i].digest));
    }
    const char *config_type = oci ? "application/vnd.oci.image.config.v1+json"
                                  : "application/vnd.docker.container.image.v1+json";
    json_t *m = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:o}", "schemaVersion", 2, "mediaType",
                          *media_type, "config", "mediaType", config_type, "size",
                          (json_int_t)config_len, "digest", config_digest, "layers", layers);
    char *text = json_dumps(m, JSON_INDENT(3) | JSON_PRESERVE_ORDER);
    json_decref(m);
    if (text == NULL)
        abort(); /* allocation failure */
    return text;
}

static int put_manifest(struct reg *g, const char *text, const char *media_type, char digest[72],
                        struct serr *err)
{
    struct body b = {.data = text, .len = strlen(text), .content_type = media_type};
    char *url = xasprintf("%s/v2/%s/manifests/%s", g->base, g->ref.path, g->ref.tag);
    struct reply r;
    int rc = send_req(g, "PUT", url, &b, &r, err);
    free(url);
    if (rc == 0 && r.status != 201)
        rc = push_failed(g, &r, "manifest", err);
    reg_reply_free(&r);
    if (rc == 0)
        reg_digest_of(text, b.len, digest);
    return rc;
}

/* The layers' blobs, from the config's diff_ids (which must be the image's). */
static int prepare_layers(struct reg *g, json_t *image, const char *config, size_t len,
                          struct push_layer **out, size_t *count, struct serr *err)
{
    json_t *cfg = json_loadb(config, len, 0, NULL);
    json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
    int rc = 0;
    if (!json_is_array(diff_ids) || !json_equal(diff_ids, json_object_get(image, "layers")))
        rc =
            serr_set(err, SERR_INVALID, "image %s: its config's rootfs.diff_ids are not its layers",
                     jstr(image, "id"));
    size_t n = json_array_size(diff_ids);
    struct push_layer *ls = xcalloc(n + 1, sizeof(*ls));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = prepare_layer(g, json_string_value(json_array_get(diff_ids, i)), &ls[i], err);
    json_decref(cfg);
    *out = ls;
    *count = n;
    return rc;
}

int registry_push(struct image_store *s, const struct registry_opts *o, const char *ref,
                  json_t *image, char digest[72], int *uploaded, struct serr *err)
{
    struct reg g;
    char *config = NULL, *from = NULL, *manifest = NULL;
    size_t config_len = 0, n = 0;
    struct push_layer *ls = NULL;
    *uploaded = 0;
    int rc = reg_open(&g, o, ref, true, err);
    g.store = s;
    if (rc == 0 && g.ref.digest[0])
        rc = serr_set(err, SERR_INVALID, "push needs a tag, not a digest: %s", ref);
    if (rc == 0) {
        char line[400];
        snprintf(line, sizeof(line), "The push refers to repository [%s/%s]", g.ref.domain,
                 g.ref.path);
        reg_progress(&g, "", line, 0, 0);
        rc = image_config_blob(s, jstr(image, "id"), &config, &config_len, err);
    }
    if (rc == 0)
        rc = prepare_layers(&g, image, config, config_len, &ls, &n, err);
    from = rc == 0 ? mount_source(&g, image) : NULL;
    if (rc == 0)
        rc = push_layers(&g, ls, n, from, uploaded, err);
    char config_digest[72];
    enum blob_fate fate = BLOB_EXISTS;
    if (rc == 0) {
        reg_digest_of(config, config_len, config_digest);
        struct body b = {.data = config, .len = config_len};
        rc = push_blob(&g, config_digest, &b, from, &fate, err);
        if (rc < 0)
            serr_wrap(err, "config %s", config_digest);
        *uploaded += fate == BLOB_PUSHED;
    }
    const char *media_type = NULL;
    if (rc == 0) {
        manifest = make_manifest(config_digest, config_len, ls, n, &media_type);
        rc = put_manifest(&g, manifest, media_type, digest, err);
    }
    if (rc == 0) {
        char line[200];
        snprintf(line, sizeof(line), "%s: digest: %s size: %zu", g.ref.tag, digest,
                 strlen(manifest));
        reg_progress(&g, "", line, 0, 0);
    }
    for (size_t i = 0; ls && i < n; i++)
        push_layer_free(&ls[i]);
    free(ls);
    free(manifest);
    free(from);
    free(config);
    free(g.authz);
    return rc;
}

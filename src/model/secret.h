/* What the CLI and the managers share about secrets and configs. */
#ifndef SHOAL_MODEL_SECRET_H
#define SHOAL_MODEL_SECRET_H

/* The largest secret or config (Swarm's limit). */
#define SECRET_MAX_SIZE (500 * 1024)

#endif

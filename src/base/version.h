/* What the daemon and the CLI share about shoal itself. */
#ifndef SHOAL_BASE_VERSION_H
#define SHOAL_BASE_VERSION_H

#define SHOAL_VERSION "0.1.0"
#define SHOAL_DEFAULT_PORT 2377 /* the cluster port */

#endif

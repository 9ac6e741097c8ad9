/* passwd_tool: the `iotgw passwd` subcommand, which maintains a password file
 * (listener key password_file) for devices that authenticate with a user name
 * and password instead of a client certificate.
 *
 *   iotgw passwd [-i ITERATIONS] [-g] FILE DEVICE   set (add or replace) a password
 *   iotgw passwd -D FILE DEVICE                     delete a device
 *
 * The password is read from the terminal without echo, twice (they must
 * match), or, when stdin is not a terminal, as one line from stdin; -g makes
 * a random one and prints it on stdout. FILE is rewritten atomically (a
 * temporary file in the same directory, fsync, rename, fsync of the
 * directory) under an flock on the directory, with mode 0640, keeping the
 * owner and group of the old file (a new file takes the directory's group, so
 * a file created in /etc/iotgw (root:iotgw 0750) is root:iotgw), and keeping
 * every other line byte for byte. A file with errors is not touched: its
 * problems are printed as FILE:LINE: message. The hashing and the file format
 * are in auth.h; this module is the terminal and file I/O around them. */
#ifndef IOTGW_PASSWD_TOOL_H
#define IOTGW_PASSWD_TOOL_H

/* argv[0] is "passwd" (the subcommand), then options and FILE DEVICE, e.g.
 * main() calls passwd_tool_main(argc - 1, argv + 1) when argv[1] is "passwd".
 * Messages go to stderr, a generated password to stdout. Returns the exit
 * status: 0 done, 1 failed (nothing changed), 2 usage error. */
int passwd_tool_main(int argc, char **argv);

#endif

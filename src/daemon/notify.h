/*
 * notify.h - the systemd notification protocol (sd_notify) without
 * libsystemd: one datagram to $NOTIFY_SOCKET.  A no-op when the variable
 * is unset, so the daemon runs the same outside systemd.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

/* Sends e.g. "READY=1\nSTATUS=serving on 127.0.0.1:8080".  0, or -1. */
int notify_send(const char *state);

#endif

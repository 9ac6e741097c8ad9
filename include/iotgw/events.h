/* events: every event the gateway logs (IOTGW_EVENT= in the journal,
 * event= on stderr). This table is the only list: log calls name an event
 * by its constant (a name not listed here does not compile), `iotgw
 * --events` prints it, and tests/integration/test_03_events.py checks that
 * iotgw(8) documents exactly these. Names are a stable interface for
 * operators' filters and alerts: add, never rename. */
#ifndef IOTGW_EVENTS_H
#define IOTGW_EVENTS_H

#define IOTGW_EVENTS(X)                                                                            \
	/* the process */                                                                      \
	X(STARTUP_FAILED, "startup_failed")                                                    \
	X(GATEWAY_READY, "gateway_ready")                                                      \
	X(THREADS_STARTED, "threads_started")                                                  \
	X(GATEWAY_STOPPING, "gateway_stopping")                                                \
	X(GATEWAY_STOPPED, "gateway_stopped")                                                  \
	X(LOOP_FAILED, "loop_failed")                                                          \
	X(CONFIG_RELOADED, "config_reloaded")                                                  \
	X(CONFIG_RELOAD_FAILED, "config_reload_failed")                                        \
	X(CONFIG_ERROR, "config_error")                                                        \
	X(CONFIG_WARNING, "config_warning")                                                    \
	X(TLS_FILES_CHANGED, "tls_files_changed")                                              \
	X(STATUS, "status")                                                                    \
	X(DEVICE_NOT_READING, "device_not_reading")                                            \
	X(LOG_SUPPRESSED, "log_suppressed")                                                    \
	X(WATCH_FAILED, "watch_failed")                                                        \
	/* listeners and connections */                                                        \
	X(LISTENER_BOUND, "listener_bound")                                                    \
	X(LISTENER_CLOSED, "listener_closed")                                                  \
	X(LISTENER_FAILED, "listener_failed")                                                  \
	X(PLAINTEXT_LISTENER, "plaintext_listener")                                            \
	X(TLS_LEGACY, "tls_legacy")                                                            \
	X(ACCEPT_FAILED, "accept_failed")                                                      \
	X(CONNECTION_LIMIT, "connection_limit")                                                \
	X(RATE_LIMITED, "rate_limited")                                                        \
	X(TLS_HANDSHAKE_FAILED, "tls_handshake_failed")                                        \
	X(TLS_HANDSHAKE_TIMEOUT, "tls_handshake_timeout")                                      \
	X(TLS_ESTABLISHED, "tls_established")                                                  \
	X(TLS_SESSIONS, "tls_sessions")                                                        \
	X(SESSION_STATE, "session_state")                                                      \
	X(PROXY_UNTRUSTED, "proxy_untrusted")                                                  \
	X(PROXY_HEADER, "proxy_header")                                                        \
	X(PROXY_HEADER_INVALID, "proxy_header_invalid")                                        \
	X(PROXY_HEADER_TIMEOUT, "proxy_header_timeout")                                        \
	/* devices */                                                                          \
	X(IDENTITY_MISSING, "identity_missing")                                                \
	X(AUTH_FAILED, "auth_failed")                                                          \
	X(CLIENT_ID_MISMATCH, "client_id_mismatch")                                            \
	X(CONNECT_REFUSED, "connect_refused")                                                  \
	X(CONNECT_TIMEOUT, "connect_timeout")                                                  \
	X(DEVICE_CONNECTED, "device_connected")                                                \
	X(SESSION_TAKEN_OVER, "session_taken_over")                                            \
	X(DEVICE_DISCONNECTED, "device_disconnected")                                          \
	X(KEEPALIVE_TIMEOUT, "keepalive_timeout")                                              \
	X(MQTT_PROTOCOL_ERROR, "mqtt_protocol_error")                                          \
	X(SUBSCRIBE_REFUSED, "subscribe_refused")                                              \
	X(COMMAND_RECEIVED, "command_received")                                                \
	X(COMMAND_DELIVERED, "command_delivered")                                              \
	X(COMMAND_EXPIRED, "command_expired")                                                  \
	X(COMMAND_REJECTED, "command_rejected")                                                \
	X(COMMAND_STATUS_DROPPED, "command_status_dropped")                                    \
	X(ACL_DENIED, "acl_denied")                                                            \
	X(CERT_EXPIRING, "cert_expiring")                                                      \
	X(CERT_REVOKED, "cert_revoked")                                                        \
	X(TLS_EXPIRING, "tls_expiring")                                                        \
	/* readings and the spool */                                                           \
	X(READING_ACCEPTED, "reading_accepted")                                                \
	X(PAYLOAD_REJECTED, "payload_rejected")                                                \
	X(SPOOL_OPEN, "spool_open")                                                            \
	X(DEVICES_FORGOTTEN, "devices_forgotten")                                              \
	X(SPOOL_ERROR, "spool_error")                                                          \
	X(SPOOL_FULL, "spool_full")                                                            \
	X(SPOOL_RESUMED, "spool_resumed")                                                      \
	X(SPOOL_SHARE_EXCEEDED, "spool_share_exceeded")                                        \
	X(SPOOL_SHARE_RELEASED, "spool_share_released")                                        \
	X(SPOOL_WRITE_FAILED, "spool_write_failed")                                            \
	X(SPOOL_WRITE_RECOVERED, "spool_write_recovered")                                      \
	X(SPOOL_FLUSH_FAILED, "spool_flush_failed")                                            \
	X(SPOOL_KEPT, "spool_kept")                                                            \
	/* upstream */                                                                         \
	X(UPSTREAM_CONNECTED, "upstream_connected")                                            \
	X(DOWNLINK_SUBSCRIBED, "downlink_subscribed")                                          \
	X(DOWNLINK_SUBSCRIBE_REFUSED, "downlink_subscribe_refused")                            \
	X(UPSTREAM_CONNECT_FAILED, "upstream_connect_failed")                                  \
	X(UPSTREAM_DOWN, "upstream_down")                                                      \
	X(UPSTREAM_REJECTED, "upstream_rejected")                                              \
	X(UPSTREAM_LIBRARY, "upstream_library")

#define IOTGW_EVENT_ENUM(id, name) EV_##id,
enum iotgw_event { EV_NONE, IOTGW_EVENTS(IOTGW_EVENT_ENUM) EV__COUNT };
#undef IOTGW_EVENT_ENUM

/* "device_connected" for EV_DEVICE_CONNECTED; "" for EV_NONE. A static
 * string: never freed. */
const char *event_name(enum iotgw_event e);

#endif

#ifndef PRIME_PRODUCER_H
#define PRIME_PRODUCER_H

/* libprime_producer: how a studio client publishes events.
 *
 *   prime_producer_conf_t *conf = prime_producer_conf_new();
 *   prime_producer_conf_set(conf, "bootstrap.servers", "kafka:9092", &err);
 *   prime_producer_t *p = prime_producer_new(conf, &err);   // takes conf
 *   prime_event_t *ev = prime_producer_event_new(p, "project.saved", &err);
 *   prime_event_set_string(ev, "project_id", id, 36, &err); ...
 *   prime_producer_publish(p, ev, my_opaque, &err);         // validates, sends
 *   prime_event_free(ev);
 *   prime_producer_flush(p, 30000, &err);
 *   prime_producer_free(p);
 *
 * Kafka conventions are fixed here so that no client gets them wrong: an
 * idempotent producer (enable.idempotence=true), the owner's user id as the
 * message key (one user's history stays ordered in one partition), headers
 * prime.event_type and prime.fingerprint, the event type's topic, lz4
 * compression unless set otherwise. Delivery of every published event is
 * reported exactly once through the delivery callback (delivered, not
 * delivered, or unknown: prime_delivery_status_t), from inside
 * prime_producer_publish/poll/flush/free on the caller's thread.
 *
 * A producer may be used from one thread at a time. Every function that
 * takes a pointer returns PRIME_ERR_ARG (or NULL, or -1, as stated) when it
 * is NULL, never crashes; an err of NULL is always allowed. */

#include <stdint.h>

#include "prime/uuid.h"

#include "prime/error.h"
#include "prime/event.h"

typedef struct prime_producer_s prime_producer_t;
typedef struct prime_producer_conf_s prime_producer_conf_t;

/* The outcome of one published event, as far as the producer can know it. */
typedef enum prime_delivery_status {
    PRIME_DELIVERED = 0,        /* the broker has it: partition and offset are set */
    PRIME_NOT_DELIVERED,        /* certainly not on the broker (never sent, or refused):
                                 * publishing it again cannot make a duplicate */
    PRIME_DELIVERY_UNKNOWN,     /* sent, but no answer came (purged by free, or timed out
                                 * in flight): the broker may have it. Publish it again only
                                 * with the same event_id (given here), which the pipeline
                                 * applies once; never as a new event */
} prime_delivery_status_t;

/* What happened to one published event. Valid during the callback only. */
typedef struct prime_delivery {
    prime_delivery_status_t status;
    const char *event_type;
    const char *topic;
    const char *event_id;    /* the event's id, generated or given */
    int64_t occurred_at;     /* the event's time (microseconds), generated or given */
    int32_t partition;       /* -1 when not delivered */
    int64_t offset;          /* -1 when not delivered */
    const prime_error_t *error; /* NULL when delivered; why, otherwise. retriable is set
                                 * for PRIME_NOT_DELIVERED (a retry may succeed) and never
                                 * for PRIME_DELIVERY_UNKNOWN (see above) */
    void *opaque;            /* as given to prime_producer_publish */
} prime_delivery_t;

typedef void (*prime_delivery_cb_t)(const prime_delivery_t *delivery, void *cb_opaque);

prime_producer_conf_t *prime_producer_conf_new(void);
void prime_producer_conf_free(prime_producer_conf_t *conf);

/* Sets a librdkafka property ("bootstrap.servers", "linger.ms",
 * "compression.type", "message.timeout.ms", ...) or one of ours:
 *   prime.max.message.bytes   largest encoded event (default 1000000; never
 *                             more than message.max.bytes)
 *   prime.max.json.bytes      largest JSON document field (default 524288)
 *   prime.close.timeout.ms    how long prime_producer_free() waits for what
 *                             is still queued before purging it (default 10000)
 * enable.idempotence cannot be turned off. */
prime_errcode_t prime_producer_conf_set(prime_producer_conf_t *conf, const char *key, const char *value,
                                        prime_error_t *err);
/* cb may be NULL (no reports). PRIME_ERR_ARG when conf is NULL. */
prime_errcode_t prime_producer_conf_set_delivery_cb(prime_producer_conf_t *conf, prime_delivery_cb_t cb,
                                                   void *cb_opaque);

/* Takes ownership of conf, whether it succeeds or not. */
prime_producer_t *prime_producer_new(prime_producer_conf_t *conf, prime_error_t *err);

/* Waits up to prime.close.timeout.ms (default 10000) for what is still
 * queued, then purges what is left and frees everything. Every purged event
 * is reported through the callback: PRIME_NOT_DELIVERED when it was never
 * sent, PRIME_DELIVERY_UNKNOWN when it was sent and no answer came (the
 * broker may have it). An event the broker has is never reported as not
 * delivered. Call prime_producer_flush() first to choose the wait.
 * Accepts NULL. */
void prime_producer_free(prime_producer_t *p);

/* The registry the producer validates and encodes with; NULL for NULL. */
const prime_registry_t *prime_producer_registry(const prime_producer_t *p);

/* Shorthand for prime_event_new() on the producer's registry. */
prime_event_t *prime_producer_event_new(prime_producer_t *p, const char *type, prime_error_t *err);

/* Publishes ev: generates event_id (a UUIDv7) and occurred_at (now) when
 * they are unset, validates, encodes and queues it. On error nothing is
 * queued and the callback is not called for it; on success the callback is
 * called once, later, and gives the event_id and occurred_at it was sent
 * with. ev is left as it was given: generated values are never written
 * into it, so the same object may be changed and published again as a new
 * event (with its own id). The caller keeps ev.
 *
 * While the local queue (queue.buffering.max.messages/kbytes) is full,
 * waits for deliveries to make room, serving callbacks meanwhile: up to
 * message.timeout.ms when the broker is gone. A thread that must not wait
 * (a UI thread) calls prime_producer_try_publish() instead. */
prime_errcode_t prime_producer_publish(prime_producer_t *p, prime_event_t *ev, void *opaque, prime_error_t *err);

/* prime_producer_publish() that waits at most timeout_ms for room in a
 * full local queue (0: not at all; -1: as long as it takes). When the queue
 * is still full then, nothing is queued and it returns PRIME_ERR_KAFKA
 * with err->retriable set ("local queue full ... publish it again"): call
 * prime_producer_poll() and try again later. */
prime_errcode_t prime_producer_try_publish(prime_producer_t *p, prime_event_t *ev, void *opaque, int timeout_ms,
                                           prime_error_t *err);

/* What prime_producer_publish() would queue for an event. */
typedef struct prime_message {
    const char *event_type;
    const char *topic;
    const char *key;         /* owner_user_id, in the event */
    size_t key_len;
    void *value;             /* single-object encoding; malloc'ed, the caller frees it */
    size_t len;
    char event_id[PRIME_UUID_TEXT]; /* as encoded: the event's own, or the one generated */
    int64_t occurred_at;     /* as encoded, microseconds since the epoch */
} prime_message_t;

/* Everything publish does short of sending: generates event_id and
 * occurred_at when unset (into out, not into ev, which is left as it was
 * given), validates, encodes. For dry runs and for callers that send
 * through a transport of their own. On error out holds nothing to free. */
prime_errcode_t prime_producer_prepare(prime_producer_t *p, prime_event_t *ev, prime_message_t *out,
                                       prime_error_t *err);

/* Serves delivery callbacks; waits up to timeout_ms for one. Returns the
 * number served, -1 when p is NULL. */
int prime_producer_poll(prime_producer_t *p, int timeout_ms);

/* Waits until every queued event is delivered or has failed (each reported
 * through the callback), up to timeout_ms. PRIME_ERR_KAFKA (retriable) if
 * some are still outstanding then. */
prime_errcode_t prime_producer_flush(prime_producer_t *p, int timeout_ms, prime_error_t *err);

/* The largest encoded event p sends: prime.max.message.bytes, or
 * librdkafka's message.max.bytes when that is smaller. 0 when p is NULL. */
size_t prime_producer_max_message_bytes(const prime_producer_t *p);

/* Events queued and not yet reported; -1 when p is NULL. */
int prime_producer_outstanding(const prime_producer_t *p);

#endif

/*
 * glue.h - a small AWS Glue Data Catalog client: the JSON 1.1 protocol over
 * HTTPS, signed with SigV4 (service "glue").
 *
 * Every operation is one POST / to https://glue.<region>.amazonaws.com (or
 * GLUE_ENDPOINT) with X-Amz-Target: AWSGlue.<Operation> and an
 * application/x-amz-json-1.1 body; the answer is a JSON object, or an error
 * object whose "__type" (or the x-amzn-ErrorType header) names the error.
 *
 * Errors: -1 with e->code IERR_TRANSIENT (throttling, 5xx, network,
 * credentials that could not be fetched: retry later) or IERR_PERMANENT
 * (AccessDeniedException, ValidationException, InvalidInputException, other
 * 4xx), e->msg "Glue <Operation> <what>: <status> <__type>: <Message>".
 * The helpers below turn the expected "not found" / "already exists" answers
 * into return values instead. Secrets never appear in messages or logs.
 *
 * A client is used by one thread at a time; every call may block on the
 * network (connect timeout 10 s, whole request 60 s).
 */
#ifndef INGESTA_GLUE_H
#define INGESTA_GLUE_H

#include <stdbool.h>

#include <stddef.h>

#include "config.h"
#include "err.h"

/* jansson's json_t; not included, so this header mixes with spool.h. */
struct json_t;

struct glue_client;

/* A client from the configuration: GLUE_ENDPOINT (default
 * https://glue.<region>.amazonaws.com), GLUE_REGION (default the S3
 * region), the AWS credentials chain, S3_CA_FILE and S3_INSECURE_SKIP_VERIFY
 * for TLS. attempts: tries per call for retryable errors (1 = no retry; the
 * uploader retries through the spool instead). NULL with *e (IERR_CONFIG). */
struct glue_client *glue_client_new(const struct config *cfg, int attempts, struct ierr *e);
void glue_client_free(struct glue_client *g);

/* "https://glue.eu-west-1.amazonaws.com", for logs. */
const char *glue_client_endpoint(const struct glue_client *g);

/*
 * One call: op ("GetTable"), request body req (not consumed). 0 with *resp
 * (a new reference, never NULL) on HTTP 200; -1 with *e otherwise, and the
 * error's short code ("EntityNotFoundException", "Timeout", ...) in code.
 */
int glue_call(struct glue_client *g, const char *op, struct json_t *req, struct json_t **resp,
              char *code, size_t codesz, struct ierr *e);

/* Pure: the short error code of an answer (__type after any '#', else the
 * x-amzn-ErrorType header before any ':', else the HTTP status name). */
void glue_error_code(const char *type_field, const char *header, long status, char *out,
                     size_t outsz);
/* Pure: IERR_TRANSIENT or IERR_PERMANENT for an answer's status and code. */
enum ierr_code glue_classify(long status, const char *code);

/* 1 found (*table: the "Table" object, new reference), 0 not found, -1. */
int glue_get_table(struct glue_client *g, const char *db, const char *name, struct json_t **table,
                   struct ierr *e);
/* 0 created, 1 already exists, -1. */
int glue_create_table(struct glue_client *g, const char *db, struct json_t *table_input,
                      struct ierr *e);
/* 0 updated, 1 not found, -1. */
int glue_update_table(struct glue_client *g, const char *db, struct json_t *table_input,
                      struct ierr *e);
/* 1 exists, 0 not found, -1. */
int glue_get_database(struct glue_client *g, const char *db, struct ierr *e);
/* 0 created, 1 already exists, -1. */
int glue_create_database(struct glue_client *g, const char *db, struct ierr *e);

#endif

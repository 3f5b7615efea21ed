/* libcurl glue for the worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "buf.h"
#include "client.h"
#include "timefmt.h"

enum tally_err client_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) ? TALLY_EIO : TALLY_OK;
}

void client_global_cleanup(void)
{
	curl_global_cleanup();
}

struct client {
	CURL *curl;
	struct curl_slist *headers; /* for a JSON body: Content-Type, and the token if any */
	struct curl_slist *plain;   /* without a body: the token, or NULL */
	char *base;
	volatile sig_atomic_t *abort;
	int abortable;
	int64_t abort_seen; /* when the transfer first saw *abort set (monotonic ms), 0: not yet */
	struct buf reply;
	char errbuf[CURL_ERROR_SIZE];
};

struct client *client_new(const char *base_url, const char *token, const char *cacert,
			  volatile sig_atomic_t *abort)
{
	struct client *c = calloc(1, sizeof *c);
	char auth[320];
	size_t n;

	if (!c)
		return NULL;
	c->curl = curl_easy_init();
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->base = strdup(base_url);
	if (c->headers && token && token[0]) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		c->plain = curl_slist_append(NULL, auth);
		if (!c->plain || !curl_slist_append(c->headers, auth)) {
			client_free(c);
			return NULL;
		}
	}
	if (!c->curl || !c->headers || !c->base) {
		client_free(c);
		return NULL;
	}
	n = strlen(c->base);
	while (n && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	c->abort = abort;
	buf_init(&c->reply, CLIENT_REPLY_MAX);
	if (cacert && cacert[0]) /* trust this CA (a self-signed coordinator) for https:// */
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, cacert);
	return c;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	curl_slist_free_all(c->plain);
	buf_release(&c->reply);
	free(c->base);
	free(c);
}

const char *client_errmsg(const struct client *c)
{
	return c->errbuf;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct client *c = ctx;
	return buf_add(&c->reply, p, size * n) ? 0 : size * n;
}

/* Aborts an abortable transfer once *abort has been set for CLIENT_ABORT_GRACE_MS with no
 * reply begun: a server with an answer at hand (a lease just granted) sends it well within the
 * grace, so the reply is read rather than dropped (a lease nobody runs until it expires); one
 * that holds the request (a long poll) is left, and sees the client gone. A reply begun is read
 * to its end (the timeout still bounds it). */
static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct client *c = ctx;
	int64_t now;
	(void)dt;
	(void)ut;
	(void)un;
	if (!c->abortable || !c->abort || !*c->abort || dn > 0)
		return 0;
	now = timefmt_mono_ms();
	if (!c->abort_seen)
		c->abort_seen = now;
	return now - c->abort_seen >= CLIENT_ABORT_GRACE_MS;
}

enum client_method { CLIENT_GET, CLIENT_POST, CLIENT_DELETE };

/* Sends a GET, POST or DELETE of path and reads the reply: see client_post. */
static enum tally_err client_send(struct client *c, enum client_method method, const char *path,
				  const json_t *body, long timeout_ms, int abortable, long *status,
				  json_t **reply)
{
	char url[1024];
	char *text = NULL;
	CURLcode cc;

	*reply = NULL;
	*status = 0;
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return TALLY_ENOMEM;
	snprintf(url, sizeof url, "%s%s", c->base, path);
	buf_release(&c->reply);
	c->errbuf[0] = '\0';
	c->abortable = abortable;
	c->abort_seen = 0;
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	/* The handle is reused: a DELETE's method must not stay for the next request. */
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
			 method == CLIENT_DELETE ? "DELETE" : (const char *)NULL);
	if (method == CLIENT_POST) {
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text ? text : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, text ? (long)strlen(text) : 0L);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, text ? c->headers : c->plain);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CLIENT_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_DNS_CACHE_TIMEOUT, (long)CLIENT_DNS_CACHE_S);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	cc = curl_easy_perform(c->curl);
	free(text);
	if (cc != CURLE_OK) {
		if (!c->errbuf[0])
			snprintf(c->errbuf, sizeof c->errbuf, "%s", curl_easy_strerror(cc));
		return TALLY_EIO;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (c->reply.len)
		*reply = json_loadb(buf_str(&c->reply), c->reply.len, 0, NULL);
	return TALLY_OK;
}

enum tally_err client_post(struct client *c, const char *path, const json_t *body, long timeout_ms,
			   int abortable, long *status, json_t **reply)
{
	return client_send(c, CLIENT_POST, path, body, timeout_ms, abortable, status, reply);
}

enum tally_err client_get(struct client *c, const char *path, long timeout_ms, long *status,
			  json_t **reply)
{
	return client_send(c, CLIENT_GET, path, NULL, timeout_ms, 0, status, reply);
}

enum tally_err client_delete(struct client *c, const char *path, long timeout_ms, long *status,
			     json_t **reply)
{
	return client_send(c, CLIENT_DELETE, path, NULL, timeout_ms, 0, status, reply);
}

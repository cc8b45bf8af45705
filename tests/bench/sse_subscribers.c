/*
 * Subscribers of `GET /events` for the benchmark (bench.py compiles it with `cc -O2` and runs
 * it; no library beyond libc).
 *
 *     BENCH_TOKEN=... sse_subscribers PORT COUNT OUT
 *
 * Opens COUNT streams to 127.0.0.1:PORT with the bearer token BENCH_TOKEN and reads them all
 * from one epoll loop: it decodes HTTP/1.1 chunked framing and parses server-sent events
 * (`event:`, `id:`, `data:` fields, comment lines, a blank line ending an event), and records,
 * for each stream, when each `post.created` event whose post is titled `live N` arrived
 * (CLOCK_MONOTONIC, the clock of Python's time.monotonic(), which bench.py stamps its writes
 * with). It is C rather than Python so that reading 100,000 events a second costs the machine
 * little beside the service it measures (Python spent 5 to 18 µs of CPU per event, as much as
 * the service spent sending it).
 *
 * Talks to bench.py on stdin and stdout, one line each way:
 * - prints `ready CONNECTED FAILED` once every stream has its answer's head (or failed);
 * - on `stop POSTS` (stdin), writes OUT: COUNT x POSTS doubles (native order), stream by
 *   stream, the arrival of post N's event at index N (NaN: it never arrived), then prints one
 *   line of JSON: its counts (events, comments, streams the server closed, events out of id
 *   order, events of other kinds or posts).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define CONNECTING_AT_ONCE 64 /* streams whose answer's head is awaited at once */
#define HEAD_MAX 16384
#define LINE_MAX_BYTES 65536

enum chunk_state { SIZE, DATA, TRAIL };

struct stream {
    int fd;
    int open;         /* the socket is open */
    int headed;       /* the answer's head has come */
    size_t head_len;
    char *head;
    enum chunk_state state;
    uint64_t size;    /* the chunk size being read (SIZE), or payload bytes left (DATA) */
    int size_done;    /* SIZE: past the digits (an extension or CR) */
    int trail;        /* TRAIL: bytes of CRLF left */
    char *line;       /* the SSE line being read */
    size_t line_len;
    char kind[32];    /* the event's `event:` */
    long long id;     /* the event's `id:`, -1 without one */
    long long seq;    /* N of a `"title":"live N"` in its data, -1 without one */
    int has_data;
    long long last_id;
    double *arrivals; /* by N */
    size_t arrivals_len;
};

static long long events, comments, closed_streams, out_of_order, other;
static int connected, failed, waiting;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void record(struct stream *s, long long n, double at) {
    if (n < 0 || n > 100000000) return;
    if ((size_t)n >= s->arrivals_len) {
        size_t len = s->arrivals_len ? s->arrivals_len : 1024;
        while (len <= (size_t)n) len *= 2;
        s->arrivals = realloc(s->arrivals, len * sizeof(double));
        for (size_t i = s->arrivals_len; i < len; i++) s->arrivals[i] = NAN;
        s->arrivals_len = len;
    }
    if (isnan(s->arrivals[n])) s->arrivals[n] = at;
}

static void dispatch(struct stream *s, double at) {
    if (s->has_data) {
        events++;
        if (s->id >= 0) {
            if (s->id <= s->last_id) out_of_order++;
            s->last_id = s->id;
        }
        if (strcmp(s->kind, "post.created") == 0 && s->seq >= 0)
            record(s, s->seq, at);
        else
            other++;
    }
    s->kind[0] = 0;
    s->id = -1;
    s->seq = -1;
    s->has_data = 0;
}

static void sse_line(struct stream *s, char *line, size_t len, double at) {
    if (len && line[len - 1] == '\r') len--;
    if (len == 0) {
        dispatch(s, at);
        return;
    }
    if (line[0] == ':') {
        comments++;
        return;
    }
    char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    char *value = colon ? colon + 1 : line + len;
    size_t value_len = len - (value - line);
    if (value_len && *value == ' ') value++, value_len--;
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < sizeof s->kind - 1 ? value_len : sizeof s->kind - 1;
        memcpy(s->kind, value, n);
        s->kind[n] = 0;
    } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
        s->id = strtoll(value, NULL, 10);
    } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        static const char marker[] = "\"title\":\"live ";
        s->has_data = 1;
        char *found = memmem(value, value_len, marker, sizeof marker - 1);
        if (found) {
            long long n = 0;
            char *p = found + sizeof marker - 1, *end = value + value_len;
            while (p < end && *p >= '0' && *p <= '9') n = n * 10 + (*p++ - '0');
            if (p < end && *p == '"') s->seq = n;
        }
    }
}

static void payload(struct stream *s, const char *data, size_t len, double at) {
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (s->line_len + take <= LINE_MAX_BYTES) {
            memcpy(s->line + s->line_len, data, take);
            s->line_len += take;
        }
        if (!nl) return;
        sse_line(s, s->line, s->line_len, at);
        s->line_len = 0;
        data += take + 1;
        len -= take + 1;
    }
}

/* Body bytes: dechunked, then parsed. Returns 0 when the server sent the last chunk. */
static int body(struct stream *s, const char *data, size_t len, double at) {
    while (len) {
        if (s->state == TRAIL) {
            data++, len--;
            if (--s->trail == 0) s->state = SIZE, s->size = 0, s->size_done = 0;
        } else if (s->state == DATA) {
            size_t take = len < s->size ? len : s->size;
            payload(s, data, take, at);
            data += take, len -= take, s->size -= take;
            if (s->size == 0) s->state = TRAIL, s->trail = 2;
        } else {
            char c = *data++;
            len--;
            if (c == '\n') {
                if (s->size == 0) return 0;
                s->state = DATA;
            } else if (!s->size_done && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
                s->size = s->size * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            } else {
                s->size_done = 1;
            }
        }
    }
    return 1;
}

static void close_stream(int ep, struct stream *s) {
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->open = 0;
}

static void on_data(int ep, struct stream *s, char *data, size_t len, double at) {
    if (!s->headed) {
        size_t room = HEAD_MAX - s->head_len;
        size_t take = len < room ? len : room;
        memcpy(s->head + s->head_len, data, take);
        s->head_len += take;
        char *end = memmem(s->head, s->head_len, "\r\n\r\n", 4);
        if (!end) {
            if (s->head_len == HEAD_MAX) goto refused;
            return;
        }
        size_t head_len = end + 4 - s->head;
        waiting--;
        s->headed = 1;
        if (s->head_len < 12 || memcmp(s->head, "HTTP/1.1 200", 12) != 0 ||
            !memmem(s->head, head_len, "chunked", 7))
            goto refused;
        connected++;
        /* what came after the head is body */
        int more = body(s, s->head + head_len, s->head_len - head_len, at);
        free(s->head);
        s->head = NULL;
        if (!more) {
            closed_streams++;
            close_stream(ep, s);
        }
        return;
    refused:
        if (!s->headed) waiting--;
        s->headed = 1;
        failed++;
        fprintf(stderr, "stream answered %.*s\n", (int)(s->head_len < 200 ? s->head_len : 200), s->head);
        close_stream(ep, s);
        return;
    }
    if (!body(s, data, len, at)) {
        closed_streams++;
        close_stream(ep, s);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: BENCH_TOKEN=... %s PORT COUNT OUT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    const char *out_path = argv[3], *token = getenv("BENCH_TOKEN");
    if (!token || count < 0) return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 64) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)count + 64 ? (rlim_t)count + 64 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char request[8192];
    int request_len = snprintf(request, sizeof request,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
        "Authorization: Bearer %s\r\n\r\n", port, token);
    struct stream *streams = calloc(count ? count : 1, sizeof *streams);
    int opened = 0;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static char buf[262144];
    char in[256];
    size_t in_len = 0;
    long long posts = -1;
    int ready_sent = 0;
    struct epoll_event ready[512];

    while (posts < 0) {
        while (opened < count && waiting < CONNECTING_AT_ONCE) {
            struct stream *s = &streams[opened++];
            s->fd = socket(AF_INET, SOCK_STREAM, 0);
            s->id = s->seq = -1;
            if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
                write(s->fd, request, request_len) != request_len) {
                if (s->fd >= 0) close(s->fd);
                failed++;
                continue;
            }
            fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
            s->open = 1;
            s->head = malloc(HEAD_MAX);
            s->line = malloc(LINE_MAX_BYTES);
            ev.events = EPOLLIN;
            ev.data.u64 = s - streams;
            epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
            waiting++;
        }
        if (!ready_sent && opened == count && waiting == 0) {
            printf("ready %d %d\n", connected, failed);
            fflush(stdout);
            ready_sent = 1;
        }
        int n = epoll_wait(ep, ready, 512, 1000);
        for (int i = 0; i < n; i++) {
            if (ready[i].data.u64 == UINT64_MAX) {
                ssize_t got = read(0, in + in_len, sizeof in - 1 - in_len);
                if (got <= 0) {
                    posts = 0;
                    break;
                }
                in_len += got;
                in[in_len] = 0;
                if (strchr(in, '\n')) {
                    long long p;
                    posts = sscanf(in, "stop %lld", &p) == 1 && p >= 0 ? p : 0;
                }
                continue;
            }
            struct stream *s = &streams[ready[i].data.u64];
            if (!s->open) continue;
            ssize_t got = read(s->fd, buf, sizeof buf);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
            double at = now();
            if (got <= 0) {
                if (!s->headed) {
                    waiting--;
                    s->headed = 1;
                    failed++;
                } else {
                    closed_streams++;
                }
                close_stream(ep, s);
                continue;
            }
            on_data(ep, s, buf, got, at);
        }
    }

    FILE *out = fopen(out_path, "wb");
    if (!out) {
        perror(out_path);
        return 1;
    }
    double *row = malloc((posts ? posts : 1) * sizeof(double));
    for (int k = 0; k < count; k++) {
        struct stream *s = &streams[k];
        for (long long i = 0; i < posts; i++)
            row[i] = (size_t)i < s->arrivals_len ? s->arrivals[i] : NAN;
        fwrite(row, sizeof(double), posts, out);
        if (s->open) close(s->fd);
    }
    fclose(out);
    printf("{\"events\": %lld, \"comments\": %lld, \"closed\": %lld, \"out_of_order\": %lld, "
           "\"other\": %lld, \"connected\": %d, \"failed\": %d}\n",
           events, comments, closed_streams, out_of_order, other, connected, failed);
    fflush(stdout);
    return 0;
}

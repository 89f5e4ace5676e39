#ifndef CHPKI_POSIX_SHIM_H
#define CHPKI_POSIX_SHIM_H

/* What Swift cannot call directly: variadic prctl(2), and a signal handler that must touch only
 * async-signal-safe state (C statics, tcsetattr, write, _exit). */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

/* No core dumps, no ptrace by same-uid processes, /proc/PID/{mem,environ} root-only: a crash or a
 * curious neighbour never gets the passphrase or a key out of memory. Returns 0 on success. */
static inline int chpki_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    int failed = 0;
    if (setrlimit(RLIMIT_CORE, &none) != 0) failed = 1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) failed = 1;
    return failed;
}

struct chpki_prompt_state {
    int fd;
    struct termios saved;
    struct sigaction old_int, old_term;
};

/* State in a function-local static: Swift imports static inline functions but not file-scope statics. */
static inline struct chpki_prompt_state *chpki_prompt_state(void) {
    static struct chpki_prompt_state state = {-1};
    return &state;
}

static inline void chpki_prompt_signal(int sig) {
    struct chpki_prompt_state *state = chpki_prompt_state();
    if (state->fd >= 0) {
        tcsetattr(state->fd, TCSANOW, &state->saved);
        (void)!write(state->fd, "\n", 1);
    }
    _exit(128 + sig);
}

/* While a no-echo prompt is up on `fd`: SIGINT/SIGTERM restore `saved` and exit 130/143. */
static inline void chpki_prompt_guard_begin(int fd, const struct termios *saved) {
    struct chpki_prompt_state *state = chpki_prompt_state();
    state->saved = *saved;
    state->fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = chpki_prompt_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &state->old_int);
    sigaction(SIGTERM, &action, &state->old_term);
}

static inline void chpki_prompt_guard_end(void) {
    struct chpki_prompt_state *state = chpki_prompt_state();
    sigaction(SIGINT, &state->old_int, NULL);
    sigaction(SIGTERM, &state->old_term, NULL);
    state->fd = -1;
}

#endif

/*
 * registry.c: task names (ex_task_register), for the backends whose
 * workers do not share the application's address space (EX_MPI: a
 * function pointer does not cross hosts, nor even two exec'd copies of one
 * executable under ASLR).  The application registers each task function
 * under a name, in every process, before it creates an executor or calls
 * ex_worker_main; the mpi backend sends the name and the worker finds its
 * own function by it.  Other backends ignore the registry.
 *
 * The one process-wide table of the library, by necessity: like a symbol
 * table it describes the program, not an executor, and it only grows
 * (a name stays bound for the life of the process).  A read-write lock
 * guards it: lookups (one per mpi task, at submit and in the proxy) share
 * it, registrations take it alone.
 */
#include "ex_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct task_entry {
    char name[EX_TASK_NAME_MAX + 1];
    ex_task_fn fn;
} task_entry;

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static task_entry *registry;
static size_t registry_len, registry_cap;

/* Under the lock: the entry named name, or NULL. */
static task_entry *find_name(const char *name)
{
    for (size_t i = 0; i < registry_len; i++)
        if (strcmp(registry[i].name, name) == 0)
            return &registry[i];
    return NULL;
}

int ex_task_register(const char *name, ex_task_fn fn)
{
    if (!name || !fn || !*name || strlen(name) > EX_TASK_NAME_MAX)
        return EX_EINVAL;
    int rc = EX_OK;
    pthread_rwlock_wrlock(&registry_lock);
    task_entry *e = find_name(name);
    if (e) {
        rc = e->fn == fn ? EX_OK : EX_EINVAL;
    } else if (registry_len == registry_cap) {
        size_t cap = registry_cap ? 2 * registry_cap : 32;
        task_entry *grown = realloc(registry, cap * sizeof *grown);
        if (!grown) {
            rc = EX_ENOMEM;
        } else {
            registry = grown;
            registry_cap = cap;
        }
    }
    if (rc == EX_OK && !e) {
        e = &registry[registry_len++];
        strcpy(e->name, name);
        e->fn = fn;
    }
    pthread_rwlock_unlock(&registry_lock);
    return rc;
}

bool ex__task_name(ex_task_fn fn, char name[EX_TASK_NAME_MAX + 1])
{
    bool found = false;
    pthread_rwlock_rdlock(&registry_lock);
    for (size_t i = 0; i < registry_len && !found; i++)
        if (registry[i].fn == fn) {
            strcpy(name, registry[i].name);
            found = true;
        }
    pthread_rwlock_unlock(&registry_lock);
    return found;
}

ex_task_fn ex__task_fn(const char *name)
{
    pthread_rwlock_rdlock(&registry_lock);
    task_entry *e = find_name(name);
    ex_task_fn fn = e ? e->fn : NULL;
    pthread_rwlock_unlock(&registry_lock);
    return fn;
}

/*
 * list.h - intrusive doubly-linked lists (as in the Linux kernel and
 * PgBouncer's usual/list.h): a struct embeds a struct list_node and is put on
 * lists without any allocation.  Every connection sits on exactly one list,
 * the one of its state.
 */
#ifndef PGCUTOVER_LIST_H
#define PGCUTOVER_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *next;
	struct list_node *prev;
};

/* The struct that embeds 'ptr' as its member 'member'. */
#define list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
	head->next = head;
	head->prev = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

/* True when 'n' is on some list (nodes are re-initialised when removed). */
static inline bool list_linked(const struct list_node *n)
{
	return n->next != n;
}

static inline void list_insert_before(struct list_node *pos, struct list_node *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}

/* Append at the tail: lists are FIFO (waiting clients are served in order). */
static inline void list_append(struct list_node *head, struct list_node *n)
{
	list_insert_before(head, n);
}

static inline void list_prepend(struct list_node *head, struct list_node *n)
{
	list_insert_before(head->next, n);
}

static inline void list_remove(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

static inline struct list_node *list_first(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->next;
}

static inline struct list_node *list_last(const struct list_node *head)
{
	return list_empty(head) ? NULL : head->prev;
}

/* Iterate; safe against removal of the current node. */
#define list_for_each_safe(pos, tmp, head)                               \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Number of nodes on the list (walks it: for counts shown to people, not hot paths). */
static inline int list_count(const struct list_node *head)
{
	const struct list_node *n;
	int count = 0;

	list_for_each(n, head)
		count++;
	return count;
}

#endif /* PGCUTOVER_LIST_H */

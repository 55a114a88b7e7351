/* list.h - an intrusive doubly linked list: a list_node embedded in each
 * element, a list_node as the head; insertion and removal are O(1) and
 * never allocate. The list owns nothing: elements stay their owner's. */
#ifndef SHELF_LIST_H
#define SHELF_LIST_H

#include <stddef.h>

typedef struct list_node {
  struct list_node *prev, *next;
} list_node;

/* For a static head: static list_node head = LIST_INIT(head); */
#define LIST_INIT(name) {&(name), &(name)}

static inline void list_init(list_node *head) { head->prev = head->next = head; }

static inline int list_empty(const list_node *head) { return head->next == head; }

static inline void list_push_back(list_node *head, list_node *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

/* Unlink n (in a list); afterwards it is a list of its own (empty). */
static inline void list_remove(list_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

/* Unlink and return the first node, or NULL if the list is empty. */
static inline list_node *list_pop_front(list_node *head) {
  if (list_empty(head))
    return NULL;
  list_node *n = head->next;
  list_remove(n);
  return n;
}

/* Move every node of `from` to `to` (an empty list), in order; `from` is
 * left empty. For working through what is queued now while new nodes may
 * be queued meanwhile. */
static inline void list_take_all(list_node *to, list_node *from) {
  if (list_empty(from)) {
    list_init(to);
    return;
  }
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  list_init(from);
}

/* The element holding node ptr as its member `member`. */
#define list_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Every node; the body must not remove pos (use list_for_each_safe). */
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_for_each_safe(pos, tmp, head)                                   \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);           \
       (pos) = (tmp), (tmp) = (pos)->next)

#endif

package auth

import "container/list"

// lru is a map bounded to max entries that forgets the least recently used one when full. It is not
// safe for concurrent use; Throttle guards it.
type lru[V any] struct {
	max   int
	order *list.List // front = most recently used; elements hold *lruEntry[V]
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key   string
	value V
}

func newLRU[V any](capacity int) *lru[V] {
	return &lru[V]{max: capacity, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the value of key and marks it used.
func (l *lru[V]) get(key string) (V, bool) {
	if el, ok := l.items[key]; ok {
		l.order.MoveToFront(el)
		return el.Value.(*lruEntry[V]).value, true
	}
	var zero V
	return zero, false
}

// put sets the value of key, evicting the least recently used entry when the map is full. The key is
// copied, so that it does not pin the buffer of the request it came from.
func (l *lru[V]) put(key string, v V) {
	if el, ok := l.items[key]; ok {
		el.Value.(*lruEntry[V]).value = v
		l.order.MoveToFront(el)
		return
	}
	if l.order.Len() >= l.max {
		oldest := l.order.Back()
		l.order.Remove(oldest)
		delete(l.items, oldest.Value.(*lruEntry[V]).key)
	}
	key = string([]byte(key))
	l.items[key] = l.order.PushFront(&lruEntry[V]{key: key, value: v})
}

// remove forgets key.
func (l *lru[V]) remove(key string) {
	if el, ok := l.items[key]; ok {
		l.order.Remove(el)
		delete(l.items, key)
	}
}

func (l *lru[V]) len() int { return l.order.Len() }

// Package kv is a gust function's key-value stores (wasi:keyvalue
// 0.2.0-draft2): the stores its manifest grants (key_value_stores =
// ["default"]), each a map from string keys to byte values that outlives
// requests.
//
//	store, err := kv.Open("default")
//	n, err := store.Increment("visits", 1)
//	value, found, err := store.Get("greeting")
package kv

import (
	"errors"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	atomics "gust.dev/sdk/go/wit/imports/wasi_keyvalue_0_2_0_draft2_atomics"
	store "gust.dev/sdk/go/wit/imports/wasi_keyvalue_0_2_0_draft2_store"
)

var (
	// ErrNoSuchStore: the manifest grants no store of that name.
	ErrNoSuchStore = errors.New("kv: no such store (is it in the function's key_value_stores?)")
	// ErrAccessDenied: the store refused the operation.
	ErrAccessDenied = errors.New("kv: access denied")
	// ErrConflict: Update gave up after too many concurrent changes.
	ErrConflict = errors.New("kv: too many concurrent updates")
)

// updateAttempts bounds Update's retries.
const updateAttempts = 64

// Error is any other failure of the store (its backend's message).
type Error struct {
	Message string
}

func (e *Error) Error() string {
	return "kv: " + e.Message
}

func convert(e store.Error) error {
	switch e.Tag() {
	case store.Error_NoSuchStore:
		return ErrNoSuchStore
	case store.Error_AccessDenied:
		return ErrAccessDenied
	default:
		return &Error{Message: e.Other()}
	}
}

// Store is an open key-value store.
type Store struct {
	bucket *store.Bucket
}

// Open opens the store called name ("default" for the store granted as
// "default").
func Open(name string) (*Store, error) {
	result := store.Open(name)
	if result.IsErr() {
		return nil, convert(result.Err())
	}
	return &Store{bucket: result.Ok()}, nil
}

// Close releases the store (optional: an instance's resources go with it).
func (s *Store) Close() {
	if s.bucket != nil {
		s.bucket.Drop()
		s.bucket = nil
	}
}

// Get is the value of key; found is false when key is not set.
func (s *Store) Get(key string) (value []byte, found bool, err error) {
	result := s.bucket.Get(key)
	if result.IsErr() {
		return nil, false, convert(result.Err())
	}
	if got := result.Ok(); got.IsSome() {
		return got.Some(), true, nil
	}
	return nil, false, nil
}

// Set sets key to value.
func (s *Store) Set(key string, value []byte) error {
	if result := s.bucket.Set(key, value); result.IsErr() {
		return convert(result.Err())
	}
	return nil
}

// Delete removes key (no error if it is not set).
func (s *Store) Delete(key string) error {
	if result := s.bucket.Delete(key); result.IsErr() {
		return convert(result.Err())
	}
	return nil
}

// Exists reports whether key is set.
func (s *Store) Exists(key string) (bool, error) {
	result := s.bucket.Exists(key)
	if result.IsErr() {
		return false, convert(result.Err())
	}
	return result.Ok(), nil
}

// Keys is every key in the store, read a page at a time.
func (s *Store) Keys() ([]string, error) {
	var keys []string
	cursor := witTypes.None[string]()
	for {
		result := s.bucket.ListKeys(cursor)
		if result.IsErr() {
			return nil, convert(result.Err())
		}
		page := result.Ok()
		keys = append(keys, page.Keys...)
		if page.Cursor.IsNone() || (cursor.IsSome() && cursor.Some() == page.Cursor.Some()) {
			return keys, nil
		}
		cursor = page.Cursor
	}
}

// Increment adds delta to the number stored at key (a missing key counts
// as 0) atomically and returns the new value.
func (s *Store) Increment(key string, delta int64) (int64, error) {
	result := atomics.Increment(s.bucket, key, delta)
	if result.IsErr() {
		return 0, convert(result.Err())
	}
	return result.Ok(), nil
}

// SetIfAbsent sets key to value only if key is not set, atomically; false
// when it was set (or got set concurrently).
func (s *Store) SetIfAbsent(key string, value []byte) (bool, error) {
	return s.compareAndSwap(key, false, nil, value)
}

// CompareAndSwap sets key to value only if its value is still old
// (atomically); false when it was different, not set, or changed
// concurrently.
func (s *Store) CompareAndSwap(key string, old, value []byte) (bool, error) {
	return s.compareAndSwap(key, true, old, value)
}

func (s *Store) compareAndSwap(key string, present bool, old, value []byte) (bool, error) {
	created := atomics.CasNew(s.bucket, key)
	if created.IsErr() {
		return false, convert(created.Err())
	}
	cas := created.Ok()
	current := cas.Current()
	if current.IsErr() {
		cas.Drop()
		return false, convert(current.Err())
	}
	got := current.Ok()
	if got.IsSome() != present || (present && string(got.Some()) != string(old)) {
		cas.Drop()
		return false, nil
	}
	return swap(cas, value)
}

// swap swaps value in with cas (consumed): false on a concurrent change.
func swap(cas *atomics.Cas, value []byte) (bool, error) {
	result := atomics.Swap(cas, value)
	if result.IsOk() {
		return true, nil
	}
	e := result.Err()
	if e.Tag() == atomics.CasError_CasFailed {
		e.CasFailed().Drop()
		return false, nil
	}
	return false, convert(e.StoreError())
}

// Update replaces the value of key with f(current value) atomically: it
// reads the value (found is false when key is not set), computes the new
// one and swaps it in only if nobody changed it meanwhile, retrying with
// the newer value otherwise. f may run several times. It returns the value
// written.
func (s *Store) Update(key string, f func(current []byte, found bool) []byte) ([]byte, error) {
	for range updateAttempts {
		created := atomics.CasNew(s.bucket, key)
		if created.IsErr() {
			return nil, convert(created.Err())
		}
		cas := created.Ok()
		current := cas.Current()
		if current.IsErr() {
			cas.Drop()
			return nil, convert(current.Err())
		}
		got := current.Ok()
		var value []byte
		if got.IsSome() {
			value = f(got.Some(), true)
		} else {
			value = f(nil, false)
		}
		swapped, err := swap(cas, value)
		if err != nil {
			return nil, err
		}
		if swapped {
			return value, nil
		}
	}
	return nil, ErrConflict
}

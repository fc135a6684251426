// Package config reads a gust function's configuration (wasi:config
// 0.2.0-rc.1): the manifest's config table, whose values may name
// secrets ("{{ secrets.token_key }}") resolved by gust.
//
//	ttl, found, err := config.Get("token_ttl")
//	key, err := config.Require("token_key")
package config

import (
	"errors"
	"fmt"

	store "gust.dev/sdk/go/wit/imports/wasi_config_0_2_0_rc_1_store"
)

// ErrMissing is the error of Require for a key that is not set.
var ErrMissing = errors.New("config: not set")

// Error is a failure of the configuration store.
type Error struct {
	Message string
}

func (e *Error) Error() string {
	return "config: " + e.Message
}

func convert(e store.Error) error {
	switch e.Tag() {
	case store.Error_Upstream:
		return &Error{Message: e.Upstream()}
	default:
		return &Error{Message: e.Io()}
	}
}

// Get is the value of key; found is false when the manifest does not set
// it.
func Get(key string) (value string, found bool, err error) {
	result := store.Get(key)
	if result.IsErr() {
		return "", false, convert(result.Err())
	}
	if got := result.Ok(); got.IsSome() {
		return got.Some(), true, nil
	}
	return "", false, nil
}

// Require is the value of key, an error wrapping ErrMissing if it is not
// set.
func Require(key string) (string, error) {
	value, found, err := Get(key)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%w: %s", ErrMissing, key)
	}
	return value, nil
}

// GetAll is every key and value.
func GetAll() (map[string]string, error) {
	result := store.GetAll()
	if result.IsErr() {
		return nil, convert(result.Err())
	}
	all := make(map[string]string)
	for _, entry := range result.Ok() {
		all[entry.F0] = entry.F1
	}
	return all, nil
}

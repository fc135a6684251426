// The users example in Go: registration, login with signed tokens,
// profiles; the behaviour (and statuses) of the Rust users example.
//
//   - POST /register with {"name": ..., "password": ...} stores the user
//     (201); a taken name is 409, malformed JSON or an invalid name or
//     password 400;
//   - POST /login with the same body answers {"token": ..., "expires_at":
//     ...} (200), or 401 for a wrong name or password;
//   - GET /me with "Authorization: Bearer TOKEN" answers the token's user
//     (200), or 401 for a missing, forged or expired token;
//   - GET /users/{name} answers a user's public profile (404 if none).
//
// Passwords are stored as PBKDF2-HMAC-SHA256 hashes (100,000 rounds) with
// a 16-byte random salt, in the key-value store "default" (key
// "user:NAME"). A token is BASE64URL(payload) "." BASE64URL(HMAC-SHA256(key,
// BASE64URL(payload))) with payload {"sub": NAME, "exp": UNIX_SECONDS}.
//
// Manifest: key_value_stores = ["default"], and config with token_key (the
// HMAC key, a secret) and optionally token_ttl (seconds a token is valid,
// default 3600; 0 issues tokens that are already expired, for tests).
package main

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	gust "gust.dev/sdk/go"
	"gust.dev/sdk/go/config"
	"gust.dev/sdk/go/kv"
)

const (
	// Iterations is the PBKDF2 round count.
	Iterations = 100_000
	saltLen    = 16
	hashLen    = 32
	defaultTTL = 3600
	minPass    = 8
	maxPass    = 1024
	maxName    = 32
)

// credentials is what a client sends to register and to log in; both
// fields are required strings.
type credentials struct {
	Name     *string `json:"name"`
	Password *string `json:"password"`
}

// user is what the store keeps per user.
type user struct {
	Name       string `json:"name"`
	Salt       string `json:"salt"` // base64
	Hash       string `json:"hash"` // base64 of the PBKDF2 output
	Iterations int    `json:"iterations"`
	CreatedAt  uint64 `json:"created_at"`
}

// claims is a token's signed content.
type claims struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// reply is a response that ends a handler early.
type reply struct {
	status int
	body   any
	bearer bool
}

func (r *reply) Error() string { return http.StatusText(r.status) }

func init() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /register", handler(register))
	mux.HandleFunc("POST /login", handler(login))
	mux.HandleFunc("GET /me", handler(me))
	mux.HandleFunc("GET /users/{name}", handler(profile))
	mux.HandleFunc("/", handler(func(*http.Request) (int, any, error) {
		return 0, nil, fail(http.StatusNotFound, "no such endpoint")
	}))
	gust.Handle(mux)
}

// Never called: a component is a library whose init functions run first.
func main() {}

// handler adapts f (a status and a JSON body, or a *reply error).
func handler(f func(*http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, err := f(r)
		if err != nil {
			var early *reply
			if !errors.As(err, &early) {
				gust.Logf(gust.LevelError, "users: %v", err)
				early = internal()
			}
			if early.bearer {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			status, body = early.status, early.body
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
}

func register(r *http.Request) (int, any, error) {
	creds, err := readCredentials(r)
	if err != nil {
		return 0, nil, err
	}
	if !validName(*creds.Name) {
		return 0, nil, fail(http.StatusBadRequest, "a user name is 1 to 32 of A-Z a-z 0-9 _ -")
	}
	if n := len(*creds.Password); n < minPass || n > maxPass {
		return 0, nil, fail(http.StatusBadRequest, "a password is 8 to 1024 bytes")
	}
	store, err := kv.Open("default")
	if err != nil {
		return 0, nil, err
	}
	key := userKey(*creds.Name)
	// Checked before the (slow) hash; SetIfAbsent below settles races.
	if exists, err := store.Exists(key); err != nil {
		return 0, nil, err
	} else if exists {
		return 0, nil, taken()
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	hash, err := hashPassword(*creds.Password, salt, Iterations)
	if err != nil {
		return 0, nil, err
	}
	u := user{
		Name:       *creds.Name,
		Salt:       base64.StdEncoding.EncodeToString(salt),
		Hash:       base64.StdEncoding.EncodeToString(hash),
		Iterations: Iterations,
		CreatedAt:  uint64(time.Now().Unix()),
	}
	record, err := json.Marshal(u)
	if err != nil {
		return 0, nil, err
	}
	// Only if nobody registered the name meanwhile.
	if set, err := store.SetIfAbsent(key, record); err != nil {
		return 0, nil, err
	} else if !set {
		return 0, nil, taken()
	}
	return http.StatusCreated, public(&u), nil
}

func login(r *http.Request) (int, any, error) {
	creds, err := readCredentials(r)
	if err != nil {
		return 0, nil, err
	}
	store, err := kv.Open("default")
	if err != nil {
		return 0, nil, err
	}
	var u *user
	if validName(*creds.Name) {
		if u, err = load(store, *creds.Name); err != nil {
			return 0, nil, err
		}
	}
	if u == nil {
		// Hash anyway, so an unknown name takes as long as a wrong
		// password and names cannot be probed by timing.
		hashPassword(*creds.Password, []byte("no such user...."), Iterations)
		return 0, nil, wrongCredentials()
	}
	salt, err := base64.StdEncoding.DecodeString(u.Salt)
	if err != nil {
		return 0, nil, err
	}
	stored, err := base64.StdEncoding.DecodeString(u.Hash)
	if err != nil {
		return 0, nil, err
	}
	hash, err := hashPassword(*creds.Password, salt, u.Iterations)
	if err != nil {
		return 0, nil, err
	}
	if subtle.ConstantTimeCompare(hash, stored) != 1 {
		return 0, nil, wrongCredentials()
	}
	ttl := int64(defaultTTL)
	if value, found, err := config.Get("token_ttl"); err != nil {
		return 0, nil, err
	} else if found {
		if ttl, err = strconv.ParseInt(strings.TrimSpace(value), 10, 64); err != nil {
			return 0, nil, errors.New("config token_ttl is not a number of seconds")
		}
	}
	c := claims{Sub: u.Name, Exp: time.Now().Unix() + ttl}
	token, err := sign(&c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"token": token, "expires_at": c.Exp}, nil
}

func me(r *http.Request) (int, any, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return 0, nil, unauthorized("a bearer token is required")
	}
	c, err := verify(strings.TrimSpace(token))
	if err != nil {
		return 0, nil, err
	}
	if time.Now().Unix() >= c.Exp {
		return 0, nil, unauthorized("the token has expired")
	}
	store, err := kv.Open("default")
	if err != nil {
		return 0, nil, err
	}
	u, err := load(store, c.Sub)
	if err != nil {
		return 0, nil, err
	}
	if u == nil {
		return 0, nil, unauthorized("the token's user no longer exists")
	}
	return http.StatusOK, public(u), nil
}

func profile(r *http.Request) (int, any, error) {
	// The route parameter gust sends (x-gust-param-name); ServeMux's
	// pattern gives the same value.
	name := gust.Param(r, "name")
	if name == "" {
		name = r.PathValue("name")
	}
	if !validName(name) {
		return 0, nil, fail(http.StatusBadRequest, "not a user name")
	}
	store, err := kv.Open("default")
	if err != nil {
		return 0, nil, err
	}
	u, err := load(store, name)
	if err != nil {
		return 0, nil, err
	}
	if u == nil {
		return 0, nil, fail(http.StatusNotFound, "no such user")
	}
	return http.StatusOK, public(u), nil
}

// public is what anyone may see of a user.
func public(u *user) map[string]any {
	return map[string]any{"name": u.Name, "created_at": u.CreatedAt}
}

func hashPassword(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, password, salt, iterations, hashLen)
}

// key is the token key (config token_key, a secret).
func key() ([]byte, error) {
	k, err := config.Require("token_key")
	if err != nil {
		return nil, err
	}
	if k == "" {
		return nil, errors.New("config token_key is empty")
	}
	return []byte(k), nil
}

func sign(c *claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	encoded := base64.RawURLEncoding.EncodeToString(payload)
	k, err := key()
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(encoded))
	return encoded + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// verify is the claims of a token signed with our key; 401 for anything
// else.
func verify(token string) (*claims, error) {
	forged := unauthorized("the token is invalid")
	payload, signature, ok := strings.Cut(token, ".")
	if !ok {
		return nil, forged
	}
	sig, err := base64.RawURLEncoding.DecodeString(signature)
	if err != nil {
		return nil, forged
	}
	k, err := key()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(payload))
	// hmac.Equal compares in constant time.
	if !hmac.Equal(mac.Sum(nil), sig) {
		return nil, forged
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, forged
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil || c.Sub == "" {
		return nil, forged
	}
	return &c, nil
}

func readCredentials(r *http.Request) (*credentials, error) {
	var c credentials
	err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&c)
	if err == nil && (c.Name == nil || c.Password == nil) {
		err = errors.New("name and password are required")
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, `expected {"name": ..., "password": ...}: `+err.Error())
	}
	return &c, nil
}

func load(store *kv.Store, name string) (*user, error) {
	bytes, found, err := store.Get(userKey(name))
	if err != nil || !found {
		return nil, err
	}
	var u user
	if err := json.Unmarshal(bytes, &u); err != nil {
		return nil, errors.New("user record of " + name + " is corrupt: " + err.Error())
	}
	return &u, nil
}

func userKey(name string) string {
	return "user:" + name
}

func validName(name string) bool {
	if name == "" || len(name) > maxName {
		return false
	}
	for _, b := range []byte(name) {
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-'
		if !ok {
			return false
		}
	}
	return true
}

func fail(status int, message string) *reply {
	return &reply{status: status, body: map[string]string{"error": message}}
}

func taken() *reply { return fail(http.StatusConflict, "that name is taken") }

func wrongCredentials() *reply { return fail(http.StatusUnauthorized, "wrong name or password") }

func unauthorized(message string) *reply {
	r := fail(http.StatusUnauthorized, message)
	r.bearer = true
	return r
}

func internal() *reply { return fail(http.StatusInternalServerError, "internal error") }

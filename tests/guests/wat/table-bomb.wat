;; Hostile guest: a `wasi:http/proxy` component, in WAT because Rust cannot
;; emit `table.grow`. On every request its core module grows a funcref table
;; by one element at a time until `table.grow` fails (returns -1), then
;; executes `unreachable`: it never answers. gust is expected to cap the
;; table (so the host's memory is not eaten by table elements), see the trap
;; and answer 500. wasmtime's `Component::new` reads this text directly.
(component
  ;; Only the two resource types the handler's signature names.
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))
  ))
  (alias export $types "incoming-request" (type $incoming-request))
  (alias export $types "response-outparam" (type $response-outparam))

  (core module $bomb
    (table $table 0 funcref)
    ;; The two parameters are the request and response-outparam handles,
    ;; left alone.
    (func (export "handle") (param i32 i32)
      (loop $grow
        (br_if $grow
          (i32.ne
            (table.grow $table (ref.null func) (i32.const 1))
            (i32.const -1))))
      unreachable)
  )
  (core instance $bomb (instantiate $bomb))

  (func $handle
    (param "request" (own $incoming-request))
    (param "response-out" (own $response-outparam))
    (canon lift (core func $bomb "handle")))

  (instance $incoming-handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $incoming-handler))
)

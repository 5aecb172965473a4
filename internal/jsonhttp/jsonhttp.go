// Package jsonhttp writes the API's JSON answers: one shape for every
// handler, errors as {"error": msg} where msg is always ours, never an
// internal error's text.
package jsonhttp

import (
	"encoding/json"
	"net/http"
)

// Write answers code with v as JSON.
func Write(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error answers code with {"error": msg}.
func Error(w http.ResponseWriter, code int, msg string) {
	Write(w, code, map[string]string{"error": msg})
}

package lambdarun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// EnvFile is the file `sam local invoke --env-vars` reads: variables by function logical id, and
// under "Parameters" variables for every function.
//
//	{"ApiFunction": {"LOG_LEVEL": "debug"}, "Parameters": {"ALLOW_HTTP_TARGETS": "true"}}
type EnvFile map[string]map[string]string

// ReadEnvFile reads an EnvFile. Numbers and booleans are taken as their text, as SAM takes them.
func ReadEnvFile(path string) (EnvFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env vars file: %w", err)
	}
	var doc map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("env vars file %s: want {\"LogicalId\": {\"VAR\": \"value\"}}: %w", path, err)
	}
	file := make(EnvFile, len(doc))
	for id, vars := range doc {
		file[id] = make(map[string]string, len(vars))
		for name, v := range vars {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				if bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) || bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
					return nil, fmt.Errorf("env vars file %s: %s.%s is not a string, number or boolean", path, id, name)
				}
				s = string(bytes.TrimSpace(v))
			}
			file[id][name] = s
		}
	}
	return file, nil
}

// Resolve returns a function's variables as sam local does: each variable the template declares
// takes, in rising priority, the template's value, the calling shell's value, the file's
// "Parameters" value, and the file's value for the function. Variables the template does not
// declare are not added.
func Resolve(logicalID string, declared map[string]string, lookupEnv func(string) (string, bool), file EnvFile) map[string]string {
	out := make(map[string]string, len(declared))
	for name, v := range declared {
		if lookupEnv != nil {
			if s, ok := lookupEnv(name); ok {
				v = s
			}
		}
		if s, ok := file["Parameters"][name]; ok {
			v = s
		}
		if s, ok := file[logicalID][name]; ok {
			v = s
		}
		out[name] = v
	}
	return out
}

package main

// These tests hold what input.go refuses to the contract's bad-input
// table: every bad body and field, each with its status and message.

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// ---- Bad input (section 5 and the rules of section 3) ----

func TestCreateTutorialBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Taken", "slug": "taken"})

		tests := []struct {
			name        string
			contentType string
			body        string
			status      int
			msg         string
		}{
			{"wrong content type", "text/plain", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"form content type, as curl -d sends", "application/x-www-form-urlencoded", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"no content type", "", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"charset parameter is fine", "application/json; charset=utf-8", `{"title":"a","slug":"a-b"}`, 201, ""},
			{"empty body", "application/json", ``, 400, "Request body must be JSON"},
			{"not JSON", "application/json", `{"title":`, 400, "Request body must be JSON"},
			{"two JSON values", "application/json", `{} {}`, 400, "Request body must be JSON"},
			{"array", "application/json", `[{"title":"a","slug":"a"}]`, 400, "Request body must be a JSON object, not an array"},
			{"string", "application/json", `"title"`, 400, "Request body must be a JSON object, not a string"},
			{"null", "application/json", `null`, 400, "Request body must be a JSON object, not null"},
			{"number", "application/json", `12`, 400, "Request body must be a JSON object, not a number"},
			{"title missing", "application/json", `{"slug":"a"}`, 400, "title is required"},
			{"title blank", "application/json", `{"title":"   ","slug":"a"}`, 400, "title is required"},
			{"slug missing", "application/json", `{"title":"a"}`, 400, "slug is required"},
			{"slug blank", "application/json", `{"title":"a","slug":" "}`, 400, "slug is required"},
			{"both missing", "application/json", `{}`, 400, "title is required; slug is required"},
			{"title wrong type", "application/json", `{"title":5,"slug":"a"}`, 400, "title must be a string"},
			{"title null", "application/json", `{"title":null,"slug":"a"}`, 400, "title must be a string"},
			{"title too long", "application/json", mustJSON(t, map[string]any{"title": strings.Repeat("é", 201), "slug": "a"}), 400, "title must be at most 200 characters"},
			{"title of 200 characters", "application/json", mustJSON(t, map[string]any{"title": strings.Repeat("é", 200), "slug": "t200"}), 201, ""},
			{"slug wrong type", "application/json", `{"title":"a","slug":["a"]}`, 400, "slug must be a string"},
			{"slug with capitals", "application/json", `{"title":"a","slug":"Go"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with double hyphen", "application/json", `{"title":"a","slug":"a--b"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with leading hyphen", "application/json", `{"title":"a","slug":"-a"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with a space", "application/json", `{"title":"a","slug":" a"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": strings.Repeat("a", 101)}), 400, "slug must be at most 100 characters"},
			{"slug taken", "application/json", `{"title":"a","slug":"taken"}`, 409, "Slug already exists"},
			{"NUL in the content", "application/json", `{"title":"a","slug":"a","content":"x\u0000y"}`, 400, `content must not contain the NUL character (\u0000)`},
			{"NUL in two fields", "application/json", `{"title":"\u0000","slug":"a","category":"a\u0000"}`, 400,
				`title must not contain the NUL character (\u0000); category must not contain the NUL character (\u0000)`},
			{"excerpt wrong type", "application/json", `{"title":"a","slug":"a","excerpt":false}`, 400, "excerpt must be a string"},
			{"excerpt too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "excerpt": strings.Repeat("x", 501)}), 400, "excerpt must be at most 500 characters"},
			{"content wrong type", "application/json", `{"title":"a","slug":"a","content":{}}`, 400, "content must be a string"},
			{"content too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "content": strings.Repeat("x", 200_001)}), 400, "content must be at most 200000 characters"},
			{"category blank", "application/json", `{"title":"a","slug":"a","category":"  "}`, 400, "category must be 1 to 50 characters"},
			{"category too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "category": strings.Repeat("c", 51)}), 400, "category must be 1 to 50 characters"},
			{"category wrong type", "application/json", `{"title":"a","slug":"a","category":1}`, 400, "category must be a string"},
			{"difficulty unknown", "application/json", `{"title":"a","slug":"a","difficulty":"expert"}`, 400, "difficulty must be one of beginner, intermediate, advanced"},
			{"difficulty wrong case", "application/json", `{"title":"a","slug":"a","difficulty":"Beginner"}`, 400, "difficulty must be one of beginner, intermediate, advanced"},
			{"difficulty wrong type", "application/json", `{"title":"a","slug":"a","difficulty":null}`, 400, "difficulty must be a string"},
			{"estimated_time fraction", "application/json", `{"title":"a","slug":"a","estimated_time":1.5}`, 400, "estimated_time must be an integer or null"},
			{"estimated_time string", "application/json", `{"title":"a","slug":"a","estimated_time":"12"}`, 400, "estimated_time must be an integer or null"},
			{"estimated_time negative", "application/json", `{"title":"a","slug":"a","estimated_time":-1}`, 400, "estimated_time must be between 0 and 100000 minutes"},
			{"estimated_time too large", "application/json", `{"title":"a","slug":"a","estimated_time":100001}`, 400, "estimated_time must be between 0 and 100000 minutes"},
			{"estimated_time past int64", "application/json", `{"title":"a","slug":"a","estimated_time":99999999999999999999}`, 400, "estimated_time must be an integer or null"},
			{"published_at not RFC 3339", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24 21:17:33"}`, 400, "published_at must be an RFC 3339 time, like 2026-11-24T21:17:33Z"},
			{"published_at after 9999 in UTC", "application/json", `{"title":"a","slug":"a","published_at":"9999-12-31T23:59:59-01:00"}`, 400, "published_at must be between the years 0000 and 9999 in UTC"},
			{"published_at before 0000 in UTC", "application/json", `{"title":"a","slug":"a","published_at":"0000-01-01T00:00:00+01:00"}`, 400, "published_at must be between the years 0000 and 9999 in UTC"},
			{"published_at wrong type", "application/json", `{"title":"a","slug":"a","published_at":1700000000}`, 400, "published_at must be a string"},
			{"published_at offset +24:00", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24T21:17:33+24:00"}`, 400, "published_at must have a UTC offset between -23:59 and +23:59"},
			{"published_at offset -24:00", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24T21:17:33-24:00"}`, 400, "published_at must have a UTC offset between -23:59 and +23:59"},
			{"published_at offset +23:59", "application/json", `{"title":"a","slug":"offset","published_at":"2026-11-24T21:17:33+23:59"}`, 201, ""},
			{"bytes that are not UTF-8 in a title", "application/json", "{\"title\":\"a\xff\xfeb\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an overlong encoding in a title", "application/json", "{\"title\":\"a\xc0\xafb\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an encoded surrogate in a title", "application/json", "{\"title\":\"a\xed\xa0\x80b\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an escaped lone high surrogate", "application/json", `{"title":"a\ud800b","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"an escaped lone low surrogate", "application/json", `{"title":"a\udc00b","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"a high surrogate before a non-surrogate", "application/json", `{"title":"a\ud800\u0041","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"an escaped backslash before u", "application/json", `{"title":"a\\ud800","slug":"backslash"}`, 201, ""},
			{"an escaped surrogate pair", "application/json", `{"title":"\ud83d\ude00","slug":"pair"}`, 201, ""},
			{"unknown field", "application/json", `{"title":"a","slug":"a","author":"me"}`, 400, `unknown field "author"`},
			{"field names are case-sensitive", "application/json", `{"Title":"a","slug":"a"}`, 400, `title is required; unknown field "Title"`},
			{"id is read-only", "application/json", `{"id":1,"title":"a","slug":"a"}`, 400, "id is read-only"},
			{"created_at is read-only", "application/json", `{"created_at":"2026-11-24T21:17:33Z","title":"a","slug":"a"}`, 400, "created_at is read-only"},
			{"updated_at is read-only", "application/json", `{"updated_at":"2026-11-24T21:17:33Z","title":"a","slug":"a"}`, 400, "updated_at is read-only"},
			{"every problem at once", "application/json", `{"title":"","slug":"A","difficulty":"hard","estimated_time":-5,"id":2,"zz":1,"aa":2}`, 400,
				"title is required; slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial; " +
					"difficulty must be one of beginner, intermediate, advanced; estimated_time must be between 0 and 100000 minutes; " +
					`id is read-only; unknown field "aa"; unknown field "zz"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := ts.count(t)
				resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, tt.body, "Content-Type", tt.contentType)
				if tt.status == http.StatusCreated {
					if resp.status != tt.status {
						t.Fatalf("got %d %q, want 201", resp.status, resp.error)
					}
					return
				}
				resp.wantError(t, tt.status, tt.msg)
				if after := ts.count(t); after != before {
					t.Errorf("a failed request changed the count from %d to %d", before, after)
				}
			})
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		big := `{"title":"a","slug":"a","content":"` + strings.Repeat("x", maxBodyBytes) + `"}`

		t.Run("with Content-Length", func(t *testing.T) {
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, big).wantError(t, http.StatusRequestEntityTooLarge, "Request body too large")
		})
		t.Run("chunked, length unknown", func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.url+"/api/v1/tutorials", io.MultiReader(strings.NewReader(big)))
			req.Header.Set("Authorization", "Bearer "+ts.writeKey)
			req.Header.Set("Content-Type", "application/json")
			if req.ContentLength != 0 {
				t.Fatalf("ContentLength = %d: the request would not be chunked", req.ContentLength)
			}
			req.ContentLength = -1
			ts.send(t, req).wantError(t, http.StatusRequestEntityTooLarge, "Request body too large")
		})
		t.Run("just under the limit is read", func(t *testing.T) {
			// Over the content rule, under the byte limit: a 400, not a 413.
			body := `{"title":"a","slug":"a","content":"` + strings.Repeat("x", maxBodyBytes-100) + `"}`
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body).wantError(t, http.StatusBadRequest, "content must be at most 200000 characters")
		})
		if n := ts.count(t); n != 0 {
			t.Errorf("%d tutorials, want 0", n)
		}
	})
}

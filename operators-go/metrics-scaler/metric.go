// Reading the metric: the Prometheus query URL, and which answers count as a value.

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"wasm-operator.dev/sdk-go/httpclient"
)

// queryURL is <metricsUrl>/api/v1/query?query=<query>, with one trailing "/" of metricsUrl dropped
// and the query percent-encoded.
func queryURL(metricsURL, query string) string {
	return strings.TrimSuffix(metricsURL, "/") + "/api/v1/query?query=" + percentEncode(query)
}

// percentEncode encodes every byte except A-Za-z0-9-._~ as %XX with upper-case hex digits. That is
// stricter than url.QueryEscape (which keeps some characters and turns spaces into "+"), and
// both implementations of the example must produce the very same URL.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Why a metric is unavailable, as status.lastError says it.
const errNoUsableSample = "metrics API returned no usable sample"

// sampleOf returns the metric's value, as the string Prometheus sent and as a number, from a query
// response. reason is set instead when there is none.
func sampleOf(resp *httpclient.Response) (value string, number float64, reason string) {
	if !resp.IsSuccess() {
		return "", 0, fmt.Sprintf("metrics API returned HTTP %d", resp.StatusCode)
	}
	value, ok := sampleString(resp.Body)
	if !ok {
		return "", 0, errNoUsableSample
	}
	number, ok = parseFinite(value)
	if !ok {
		return "", 0, errNoUsableSample
	}
	return value, number, ""
}

// sampleString takes the value string of a successful query: result[0].value[1] of a vector with
// at least one sample, or result[1] of a scalar.
func sampleString(body []byte) (string, bool) {
	var answer struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Status != "success" {
		return "", false
	}
	var pair []json.RawMessage // [timestamp, "value"]
	switch answer.Data.ResultType {
	case "vector":
		var samples []struct {
			Value []json.RawMessage `json:"value"`
		}
		if json.Unmarshal(answer.Data.Result, &samples) != nil || len(samples) == 0 {
			return "", false
		}
		pair = samples[0].Value
	case "scalar":
		if json.Unmarshal(answer.Data.Result, &pair) != nil {
			return "", false
		}
	default:
		return "", false
	}
	var value string
	if len(pair) < 2 || json.Unmarshal(pair[1], &value) != nil {
		return "", false
	}
	return value, true
}

// parseFinite parses a decimal number and refuses NaN and infinities. Go's ParseFloat also takes
// hexadecimal floats and "_" digit separators, which are not numbers in Prometheus' sense (nor in
// the Rust implementation's), so they are refused too.
func parseFinite(s string) (float64, bool) {
	if strings.ContainsAny(s, "xX_") {
		return 0, false
	}
	number, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(number) || math.IsInf(number, 0) {
		return 0, false
	}
	return number, true
}

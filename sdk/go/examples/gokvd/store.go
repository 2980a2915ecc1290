package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// store is gokvd's state: a map rebuilt from an append-only log,
// <data-dir>/kv.log. It knows nothing about baton or HTTP.
//
// A record is a header (magic, key length, value length, revision, CRC-32
// of the rest) then the key and the value. Revisions count 1, 2, 3, ...
// with no gap. The fingerprint is a running FNV-1a over every record in
// order, so two processes that replayed the same log agree on it.
type store struct {
	path string

	mu       sync.RWMutex // guards the memory
	kv       map[string][]byte
	revision uint64 // last record applied
	hash     uint64 // the fingerprint's state
	applied  int64  // log bytes applied

	wmu    sync.Mutex // guards the writer; taken before mu
	w      *os.File   // nil when closed
	failed error      // a write or fsync failed: no more writes
}

const (
	recordMagic = 0x6b766431 // "kvd1"
	headerSize  = 4 + 4 + 4 + 8 + 4
	maxKey      = 1 << 10
	maxValue    = 1 << 20
	fnvOffset   = 14695981039346656037
	fnvPrime    = 1099511628211
)

func newStore(dataDir string) *store {
	return &store{path: filepath.Join(dataDir, "kv.log"), kv: map[string][]byte{}, hash: fnvOffset}
}

func encode(key string, value []byte, revision uint64) []byte {
	rec := make([]byte, headerSize, headerSize+len(key)+len(value))
	binary.LittleEndian.PutUint32(rec[0:], recordMagic)
	binary.LittleEndian.PutUint32(rec[4:], uint32(len(key)))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(value)))
	binary.LittleEndian.PutUint64(rec[12:], revision)
	rec = append(append(rec, key...), value...)
	binary.LittleEndian.PutUint32(rec[20:], crc32.ChecksumIEEE(append(rec[:20:20], rec[headerSize:]...)))
	return rec
}

// apply adds a record to memory. Called with mu held for writing.
func (s *store) apply(rec []byte) {
	klen := binary.LittleEndian.Uint32(rec[4:])
	s.kv[string(rec[headerSize:headerSize+klen])] = append([]byte(nil), rec[headerSize+klen:]...)
	s.revision = binary.LittleEndian.Uint64(rec[12:])
	for _, b := range rec {
		s.hash = (s.hash ^ uint64(b)) * fnvPrime
	}
	s.applied += int64(len(rec))
}

// replay applies the records after the ones applied. readOnly: another
// process may be appending, so stop at a bad or half-written record;
// otherwise we own the log: cut a torn tail.
func (s *store) replay(readOnly bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, s.applied, 1<<62))
	if err != nil {
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	for len(data) > 0 {
		rec, ok, torn := nextRecord(data)
		switch {
		case ok && binary.LittleEndian.Uint64(rec[12:]) != s.revision+1:
			return fmt.Errorf("%s at offset %d: revision %d after %d", s.path, s.applied,
				binary.LittleEndian.Uint64(rec[12:]), s.revision)
		case ok:
			s.apply(rec)
			data = data[len(rec):]
		case readOnly:
			return nil // the writer is in the middle of it
		case !torn:
			return fmt.Errorf("%s: damaged record at offset %d", s.path, s.applied)
		default:
			// The writer died mid-record: nothing from it on was acknowledged.
			if err := os.Truncate(s.path, s.applied); err != nil {
				return fmt.Errorf("cut the torn tail of %s: %w", s.path, err)
			}
			return nil
		}
	}
	return nil
}

// nextRecord is the record at the start of data; torn says a bad one is
// the log's last (a write cut short), not damage before good records.
func nextRecord(data []byte) (rec []byte, ok, torn bool) {
	if len(data) < headerSize {
		return nil, false, true
	}
	klen, vlen := binary.LittleEndian.Uint32(data[4:]), binary.LittleEndian.Uint32(data[8:])
	if binary.LittleEndian.Uint32(data) != recordMagic || klen > maxKey || vlen > maxValue {
		return nil, false, false
	}
	if len(data) < headerSize+int(klen)+int(vlen) {
		return nil, false, true
	}
	rec = data[:headerSize+int(klen)+int(vlen)]
	sum := crc32.ChecksumIEEE(append(rec[:20:20], rec[headerSize:]...))
	return rec, sum == binary.LittleEndian.Uint32(rec[20:]), len(rec) == len(data)
}

// reload forgets memory and replays the whole log (another process wrote it).
func (s *store) reload() error {
	s.mu.Lock()
	s.kv, s.revision, s.hash, s.applied = map[string][]byte{}, 0, fnvOffset, 0
	s.mu.Unlock()
	return s.replay(false)
}

func (s *store) openWriter() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	s.w, s.failed = f, nil
	return nil
}

// closeWriter fsyncs and closes the writer; nothing is written after.
func (s *store) closeWriter() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil {
		return s.failed
	}
	err := s.w.Sync()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	s.w = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return s.failed
}

// put appends a record and fsyncs it; the value is visible (and may be
// acknowledged) once put returns its revision.
func (s *store) put(key string, value []byte) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil || s.failed != nil {
		return 0, errors.New("not writable")
	}
	// Only the writer changes the revision, and we are the writer.
	s.mu.RLock()
	rec := encode(key, value, s.revision+1)
	s.mu.RUnlock()
	if _, err := s.w.Write(rec); err != nil {
		s.failed = err
		return 0, err
	}
	if err := s.w.Sync(); err != nil {
		s.failed = err
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(rec)
	return s.revision, nil
}

func (s *store) get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.kv[key]
	return v, ok
}

// state is the revision and the fingerprint (16 hex digits) at it.
func (s *store) state() (uint64, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revision, fmt.Sprintf("%016x", s.hash)
}

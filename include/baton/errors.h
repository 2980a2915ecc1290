// Errors as values for daemons: baton::Error, Result<T>, Status, Errc.
#pragma once

#include "base/errors.h"

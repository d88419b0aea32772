// Errors, version and threading defaults.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

// The exception types, created once at import (translators cannot capture state).
PyObject* g_error = nullptr;
PyObject* g_input_error = nullptr;
PyObject* g_config_error = nullptr;
PyObject* g_format_error = nullptr;
PyObject* g_divergence_error = nullptr;

PyObject* new_exception(py::module_& m, const char* name, const char* doc, PyObject* bases) {
  const std::string qualified = std::string("perkrec.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.attr(name) = py::handle(type);
  return type;
}

}  // namespace

void bind_core(py::module_& m) {
  m.attr("__version__") = version_string;
  m.attr("MIN_TIME") = kMinTimestamp;  // the range of times perkrec accepts (core/types.hpp)
  m.attr("MAX_TIME") = kMaxTimestamp;
  m.attr("MAX_THREADS") = kMaxThreads;

  // Each class also derives from the builtin a Python user would catch.
  g_error = new_exception(m, "Error", "Root of all perkrec errors.", PyExc_Exception);
  py::tuple value_bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError));
  g_input_error = new_exception(m, "InputError",
                                "Bad data: shapes, ids, non-finite values, unknown categories.",
                                value_bases.ptr());
  g_config_error = new_exception(
      m, "ConfigError", "Bad hyper-parameters or configuration, including strict-JSON violations.",
      value_bases.ptr());
  g_format_error = new_exception(
      m, "ModelFormatError", "A model file or byte string that cannot be loaded; .code says why.",
      value_bases.ptr());
  py::tuple arithmetic_bases =
      py::make_tuple(py::handle(g_error), py::handle(PyExc_ArithmeticError));
  g_divergence_error = new_exception(m, "DivergenceError", "Training produced non-finite values.",
                                     arithmetic_bases.ptr());

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ModelFormatError& e) {
      py::object instance =
          py::reinterpret_steal<py::object>(PyObject_CallFunction(g_format_error, "s", e.what()));
      if (!instance) return;  // the call failed; its Python error stands
      instance.attr("code") = to_string(e.code());
      PyErr_SetObject(g_format_error, instance.ptr());
    } catch (const InputError& e) {
      PyErr_SetString(g_input_error, e.what());
    } catch (const ConfigError& e) {
      PyErr_SetString(g_config_error, e.what());
    } catch (const DivergenceError& e) {
      PyErr_SetString(g_divergence_error, e.what());
    } catch (const Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
  });

  m.def(
      "default_num_threads", [] { return resolve_num_threads(0); },
      "Threads a call with num_threads=0 uses (the OpenMP default).");
  m.def("has_openmp", [] { return PERKREC_HAS_OPENMP == 1; });
}

}  // namespace perkrec::python
